"""Sources turn transport bytes into batches for the normalizers; they never write SQL."""
