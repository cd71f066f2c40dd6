"""`make demo`: a small Go fleet with one GC storm, one goroutine leak, one lost cancellation, one healthy."""
