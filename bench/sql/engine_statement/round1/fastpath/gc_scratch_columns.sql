-- This form's working columns that the chunk statement's window need not carry.
line, shape, nums, base, since_parts
