"""The Pulumi program: stack config in, platform components out, in dependency order, then the stack outputs.

Order (data dependencies, plus `depends_on` only where data cannot express it):
namespaces -> Kafka, search, object store, Argo -> feedback pipeline (needs Kafka topics and the search
credentials Secret) -> Seldon operator (its default logger endpoint is the collector URL) -> classifier charts
(SeldonDeployments need the operator's CRD and webhook) -> batch and flow-back WorkflowTemplates (need Argo's CRD
and the real-time SeldonDeployment). The outputs are the contract the smoke tests read (docs/deploy.md, "Stack
outputs").
"""

import sys
from pathlib import Path

# `pulumi up` runs this file from infra/; make `infra.*` importable the same way the tests import it.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pulumi
import pulumi_kubernetes as k8s

from infra import config
from infra.batch import BatchWorkflow, BatchWorkflowArgs
from infra.charts import KafkaClient
from infra.classifier import PREDICTOR, CanaryRegistry, Classifier, ClassifierArgs, streaming_deployments
from infra.feedback import FeedbackPipeline, FeedbackPipelineArgs, MonitorRegistry
from infra.flowback import MODEL_NAME, FlowbackSearch, FlowbackWorkflow, FlowbackWorkflowArgs
from infra.kafka import KafkaPlatform, KafkaPlatformArgs
from infra.namespaces import Namespaces, NamespacesArgs
from infra.objectstore import ObjectStore, ObjectStoreArgs
from infra.search import SearchPlatform, SearchPlatformArgs
from infra.seldon import SeldonOperator, SeldonOperatorArgs
from infra.transforms import platform_transforms
from infra.workflows import Workflows, WorkflowsArgs

cfg = config.load()
labels = {"app.kubernetes.io/part-of": "seldon-feedback", "seldon-feedback/stack": cfg.platform.stack}
labels.update(cfg.platform.labels)


# One explicit provider (the ambient kubeconfig and context, like the default one) for every component: with only
# the default provider, the objects Chart v4 renders were registered under an unversioned default provider of
# their own that the next preview showed as a delete (found by the real engine, tests/infra/test_pulumi_engine.py).
# It takes the default provider's stack settings (`pulumi config set kubernetes:context ...`), which an explicit
# provider would otherwise ignore.
_cluster = pulumi.Config("kubernetes")
kubernetes = k8s.Provider(
    "kubernetes",
    kubeconfig=_cluster.get("kubeconfig"),
    context=_cluster.get("context"),
    cluster=_cluster.get("cluster"),
    # A changed ConfigMap or Secret is updated in place, not deleted and made again (the provider's default, which
    # leaves pods without their settings meanwhile); our charts roll their pods through checksum annotations.
    enable_config_map_mutable=True,
    enable_secret_mutable=True,
)


def options(namespace: str | None) -> pulumi.ResourceOptions:
    """Component options: the provider, common labels, default requests and the component's namespace as the
    default."""
    requests = cfg.platform.default_requests
    return pulumi.ResourceOptions(
        providers={"kubernetes": kubernetes},
        transforms=platform_transforms(labels=labels, namespace=namespace, cpu=requests.cpu, memory=requests.memory),
    )


app = cfg.platform.app_namespace
mirrors = cfg.platform.mirrors
# A namespace for each part the program installs; operators and services that already exist bring their own.
installs = {
    "kafkaOperator": cfg.kafka.operator == "install" and cfg.kafka.existing is None,
    "searchOperator": cfg.search.operator == "install" and cfg.search.existing is None,
    "objectStore": cfg.objectstore.existing is None,
    "workflows": cfg.workflows.operator == "install",
    "seldonOperator": cfg.seldon.operator == "install",
}
namespace_names = {
    "kafkaOperator": cfg.kafka.operator_namespace,
    "searchOperator": cfg.search.operator_namespace,
    "objectStore": cfg.objectstore.namespace,
    "workflows": cfg.workflows.namespace,
    "seldonOperator": cfg.seldon.namespace,
}
namespaces = Namespaces(
    "namespaces",
    NamespacesArgs(
        names={"app": app, **{role: name for role, name in namespace_names.items() if installs[role]}},
        labels=labels,
    ),
    opts=options(None),
)
app_ns = namespaces.names["app"]
pdb = cfg.platform.pod_disruption_budgets


def installed_namespace(role: str) -> pulumi.Output[str] | None:
    return namespaces.names.get(role)


kafka = KafkaPlatform(
    "kafka",
    KafkaPlatformArgs(
        settings=cfg.kafka,
        operator_namespace=installed_namespace("kafkaOperator"),
        namespace=app_ns,
        protect=cfg.platform.protect,
        pod_disruption_budgets=pdb,
        mirrors=mirrors,
        # the streaming executors' consumer groups, as the executor names them (their KafkaUser may read in them)
        executor_groups=[
            f"{PREDICTOR}.{deployment}.{cfg.platform.app_namespace}"
            for deployment in streaming_deployments(cfg.classifier)
        ],
    ),
    # Operator chart and cluster sit in different namespaces: every object names its own, no default.
    opts=options(None),
)
search = SearchPlatform(
    "search",
    SearchPlatformArgs(
        settings=cfg.search,
        capture_index=cfg.feedback.index,
        monitor_index=cfg.feedback.monitor_index,
        operator_namespace=installed_namespace("searchOperator"),
        namespace=app_ns,
        protect=cfg.platform.protect,
        pod_disruption_budgets=pdb,
        mirrors=mirrors,
    ),
    opts=options(None),
)
objectstore = ObjectStore(
    "objectstore",
    ObjectStoreArgs(
        settings=cfg.objectstore,
        namespace=installed_namespace("objectStore"),
        client_namespace=app_ns,
        registry_bucket=cfg.flowback.bucket,
        protect=cfg.platform.protect,
        pod_disruption_budgets=pdb,
        mirrors=mirrors,
    ),
    opts=options(cfg.objectstore.namespace),
)
workflows = Workflows(
    "workflows",
    WorkflowsArgs(
        settings=cfg.workflows,
        namespace=installed_namespace("workflows"),
        watched_namespaces=[app_ns],
        mirrors=mirrors,
    ),
    opts=options(cfg.workflows.namespace),
)


def kafka_client(role: str | None) -> KafkaClient:
    """How the client `role` (collector, indexer, monitor, executor) reaches Kafka and logs in as its own user;
    None: the settings the feedback services share, with the shared login of kafka:existing.saslSecret if any."""
    secret = kafka.credentials_secret_names.get(role) if role is not None else kafka.shared_secret_name
    return KafkaClient(
        bootstrap_servers=kafka.bootstrap_servers,
        security_protocol=kafka.security_protocol,
        cluster_name=kafka.cluster_name,
        ca_secret_name=kafka.ca_secret_name,
        sasl_mechanism=kafka.sasl_mechanism,
        credentials_secret_name=secret if kafka.sasl_mechanism else None,
        username_key=kafka.username_key,
        password_key=kafka.password_key,
        username=kafka.usernames.get(role, "") if role is not None else "",
        client_cert_secret_name=secret if kafka.client_certificates else None,
    )


pipeline = FeedbackPipeline(
    "feedback",
    FeedbackPipelineArgs(
        settings=cfg.feedback,
        namespace=app_ns,
        kafka=kafka_client(None),
        kafka_clients={
            role: kafka_client(role) for role in ("collector", "indexer", "monitor") if role in kafka.own_logins
        },
        capture_topic=kafka.topic_names["capture"],
        dead_letter_topic=kafka.topic_names["deadLetter"],
        search_url=search.url,
        search_cluster_name=search.cluster_name,
        search_credentials=search.credentials,
        search_ca_secret_name=search.ca_secret_name,
        seldon_namespaces=[app_ns],
        streaming_deployments=streaming_deployments(cfg.classifier),
        seldon_version=cfg.seldon.version,
        profile_images={"classifier": mirrors.image(cfg.classifier.image.reference)},
        # a canary serves a registered version: its profile is in the registry, not in the classifier image
        registry=MonitorRegistry(
            endpoint=objectstore.endpoint,
            bucket=objectstore.registry_bucket,
            secret_name=objectstore.credentials_secret_name,
            pod_namespace=objectstore.pod_namespace,
            pod_labels=objectstore.pod_labels,
            port=objectstore.api_port,
        ),
        kibana_url=search.kibana_url,
        kibana_ca_secret_name=search.kibana_ca_secret_name,
        pod_disruption_budgets=pdb,
        search_engine=search.engine,
        mirrors=mirrors,
        mesh=cfg.platform.mesh,
        mesh_trust_domain=cfg.platform.mesh_trust_domain,
    ),
    opts=options(app),
)
seldon = SeldonOperator(
    "seldon",
    SeldonOperatorArgs(
        settings=cfg.seldon,
        namespace=installed_namespace("seldonOperator"),
        request_logger_endpoint=pipeline.collector_url,
        mirrors=mirrors,
    ),
    opts=options(cfg.seldon.namespace),
)
classifier = Classifier(
    "classifier",
    ClassifierArgs(
        settings=cfg.classifier,
        namespace=app_ns,
        kafka=kafka_client("executor"),
        model_input_topic=kafka.topic_names["modelInput"],
        model_output_topic=kafka.topic_names["modelOutput"],
        capture_topic=kafka.topic_names["capture"],
        collector_url=pipeline.collector_url,
        pod_disruption_budgets=pdb,
        registry=CanaryRegistry(
            endpoint=objectstore.endpoint,
            bucket=objectstore.registry_bucket,
            secret_name=objectstore.credentials_secret_name,
            image=cfg.feedback.image,
        ),
        mirrors=mirrors,
    ),
    # SeldonDeployments need the operator's CRD and its validating webhook up.
    opts=pulumi.ResourceOptions.merge(options(app), pulumi.ResourceOptions(depends_on=[seldon])),
)
batch = BatchWorkflow(
    "batch",
    BatchWorkflowArgs(
        settings=cfg.batch,
        namespace=app_ns,
        seldon_deployment=classifier.realtime_deployment,
        rest_host=classifier.rest_url.apply(lambda url: url.split("://", 1)[1]),
        processor_image=cfg.classifier.image,
        objectstore_endpoint=objectstore.endpoint,
        bucket=objectstore.bucket,
        objectstore_secret_name=objectstore.credentials_secret_name,
        mirrors=mirrors,
    ),
    # The WorkflowTemplate needs Argo's CRDs; its batch runs call the real-time SeldonDeployment.
    opts=pulumi.ResourceOptions.merge(options(app), pulumi.ResourceOptions(depends_on=[workflows, classifier])),
)

flowback = None
if cfg.flowback.enabled:
    flowback = FlowbackWorkflow(
        "flowback",
        FlowbackWorkflowArgs(
            settings=cfg.flowback,
            namespace=app_ns,
            deployment=classifier.realtime_deployment,
            search=FlowbackSearch(
                url=search.url,
                engine=search.engine,
                index=pipeline.index,
                username=search.username,
                secret_name=search.credentials_secret_name,
                password_key=search.credentials_secret_key,
                ca_secret_name=search.ca_secret_name,
            ),
            objectstore_endpoint=objectstore.endpoint,
            bucket=objectstore.registry_bucket,
            objectstore_secret_name=objectstore.credentials_secret_name,
            flowback_image=cfg.feedback.image,
            classifier_image=cfg.classifier.image,
            mirrors=mirrors,
        ),
        # The WorkflowTemplate (and CronWorkflow) need Argo's CRDs; the export reads what the pipeline indexes.
        opts=pulumi.ResourceOptions.merge(
            options(app), pulumi.ResourceOptions(depends_on=[workflows, pipeline, classifier])
        ),
    )

# ---- stack outputs: the contract the smoke tests read (docs/deploy.md) ----
pulumi.export("namespaces", namespaces.names)
pulumi.export(
    "prediction",
    {
        "restUrl": classifier.rest_url,
        "grpcAddress": classifier.grpc_address,
        "deployment": classifier.realtime_deployment,
        "streamingDeployment": classifier.streaming_deployment,
        "predictor": "default",
        "namespace": app_ns,
    },
)
pulumi.export(
    "kafka",
    {
        "bootstrap": kafka.bootstrap_servers,
        "securityProtocol": kafka.security_protocol,
        "caSecret": kafka.ca_secret_name,
        "topics": kafka.topic_names,
        # each client's user and credentials Secret (in the app namespace): the smoke suite logs in as "smoke"
        "saslMechanism": kafka.sasl_mechanism,
        "users": kafka.usernames,
        "credentialsSecrets": kafka.credentials_secret_names,
        "passwordKey": kafka.password_key,
        "usernameKey": kafka.username_key,
        "clientCertificates": kafka.client_certificates,
    },
)
pulumi.export(
    "search",
    {
        "url": search.url,
        "kibanaUrl": search.kibana_url,
        "index": pipeline.index,
        "indexPattern": f"{pipeline.index}*",
        "username": search.username,
        "credentialsSecret": search.credentials_secret_name,
        "credentialsSecretKey": search.credentials_secret_key,
        "serviceCredentials": {
            service: {"username": c.username, "secret": c.secret_name, "secretKey": c.secret_key}
            for service, c in search.credentials.items()
        },
    },
)
pulumi.export(
    "objectStore",
    {
        "endpoint": objectstore.endpoint,
        "bucket": objectstore.bucket,
        "credentialsSecret": objectstore.credentials_secret_name,
    },
)
pulumi.export(
    "collector",
    {"url": pipeline.collector_url, "executorDefaultEndpoint": seldon.request_logger_endpoint},
)
pulumi.export("batch", {"workflowTemplate": batch.template_name, "namespace": app_ns})
# The registry's layout (docs/flowback.md): s3://<bucket>/registry/<modelName>/<version>/, datasets/<deployment>/.
pulumi.export(
    "flowback",
    {
        "enabled": cfg.flowback.enabled,
        "workflowTemplate": flowback.template_name if flowback is not None else "",
        "cronWorkflow": flowback.cron_workflow_name if flowback is not None else "",
        "namespace": app_ns,
        "bucket": objectstore.registry_bucket,
        "modelName": MODEL_NAME,
        "registryPrefix": f"registry/{MODEL_NAME}/",
        "datasetsPrefix": "datasets/",
        "credentialsSecret": objectstore.credentials_secret_name,
    },
)
# Where each component's pods run, for the smoke suite's cluster checks (pods running, containers non-root); services
# that already existed (kafka:existing, search:existing, objectstore:existing) run elsewhere and are not listed.
components: dict[str, object] = {
    **{role: {"namespace": app_ns, "selector": selector} for role, selector in pipeline.pod_selectors.items()},
    **{role: {"namespace": app_ns, "selector": selector} for role, selector in classifier.pod_selectors.items()},
}
if kafka.pod_selector is not None:
    components["kafka"] = {"namespace": app_ns, "selector": kafka.pod_selector}
if search.pod_selector is not None:
    components["elasticsearch"] = {"namespace": app_ns, "selector": search.pod_selector}
if objectstore.pod_selector is not None:
    components["minio"] = {"namespace": namespaces.names["objectStore"], "selector": objectstore.pod_selector}
pulumi.export("components", components)
pulumi.export("seldonVersion", seldon.version)
