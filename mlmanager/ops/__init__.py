"""Operations: health and readiness probes, Prometheus metrics, and the web server's logs."""
