-- This form's working columns that the chunk statement's window need not carry.
line, shape, trimmed, nums, base, values, since_parts
