"""What the served process runs beside its HTTP routes, shared by the API and the Panel pages: the
process's services (runtime), the one LISTEN connection fanned out to subscribers (live), and the
background sampling and alerting (maintenance)."""
