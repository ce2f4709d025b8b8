"""Stage 4: deployment artifacts (Docker, Compose, Kubernetes), their offline validation, and
the signed, verifiable release package (`doit sign`, `autocoder verify`)."""
