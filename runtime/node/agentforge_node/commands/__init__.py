"""One module per command, `run(req, emit) -> dict`; each request is its generated model in requests.py."""
