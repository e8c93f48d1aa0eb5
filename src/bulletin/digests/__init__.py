"""Weekly digests: windows, editions, the plan, rendering and inlining, the message, the archive."""
