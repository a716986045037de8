"""One export run: read, filter, match, transform, diff, write, summarize."""
