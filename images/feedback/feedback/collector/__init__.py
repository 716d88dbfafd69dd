"""The collector: receives Seldon's CloudEvents over HTTP and produces them to the Kafka capture topic."""
