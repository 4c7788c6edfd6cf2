"""What an operator sees of the requests: the request log and the Prometheus metrics."""
