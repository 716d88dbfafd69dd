"""The indexer: reads the capture topic and merges request, response and feedback into one search document."""
