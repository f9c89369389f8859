"""One module per command: each defines a `Request` dataclass and `run(req, emit) -> dict`."""
