"""An executor-compatible engine for the local stack, held to recordings of the real Seldon Core executor.

The Go module proxy refuses Seldon's modules, so the real executor cannot be built here; this package stands in
for it in front of the model, for the classifier's single-model graph, and does what the recordings in
../shared/reference/seldon-executor-1.17.1/ show the real one doing. Its split mirrors the executor's
(executor/cmd/executor, api/rest, api/grpc, api/kafka, predictor, logger):

    main.py       flags, environment, wiring (cmd/executor/main.go)
    rest.py       the REST server and its answers (api/rest)
    grpc_api.py   the gRPC Seldon service, a raw-bytes pass-through (api/grpc/seldon)
    kafka_api.py  the Kafka server type (api/kafka)
    predictor.py  the graph walk's logging rules, the model's REST client, readiness (predictor/)
    spec.py       ENGINE_PREDICTOR: the PredictorSpec, checked
    logger.py     the bounded log queue, its workers, the CloudEvents-over-HTTP and direct-Kafka senders (logger/)
    versions.py   what each Seldon version does differently
    metrics.py    its Prometheus metrics

Run it with `python -m devstack.engine` (docs/executor.md); the local stack starts it through
devstack/servers/engine.py, which can run a real executor binary with the same configuration instead.
"""
