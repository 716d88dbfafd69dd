"""SASL/SCRAM and ACLs for the local Kafka: the users and ACLs of infra/kafka_access.py on a real broker.

    security = KafkaSecurity.load_or_create(run_dir / "kafka")   # passwords kept in credentials.json (0600)
    kafka = KafkaServer(run_dir, security=security).start()      # SASL_PLAINTEXT + StandardAuthorizer
    kafka.grant(names)                                           # SCRAM users and the table's ACLs, by admin API
    kafka.client_config(COLLECTOR_USER)                          # librdkafka settings that log in as that user

The broker listener takes SCRAM-SHA-512 only; the controller listener takes PLAIN with one static user (the
admin), because KRaft controllers cannot check SCRAM credentials they store themselves. The admin is the one super
user: provisioning and test fixtures use it; every service logs in as its own user with exactly the table's ACLs.
The admin's SCRAM credential is written at format time (`kafka-storage format --add-scram`, so the broker can log
in to itself); the clients' are upserted with the admin API (so a restart on old data picks up new users).
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack.runtime.errors import DevstackError
from infra.kafka_access import ADMIN_USER, CLIENTS, Acl, KafkaNames, acls

MECHANISM = "SCRAM-SHA-512"
PROTOCOL = "SASL_PLAINTEXT"  # 127.0.0.1 only: SASL without TLS, as the cluster's listener is SASL over TLS
SCRAM_ITERATIONS = 8192
CREDENTIALS_FILE = "credentials.json"
AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
# the variables the feedback services and the executor read for each librdkafka login setting
CLIENT_ENV = {
    "security.protocol": "KAFKA_SECURITY_PROTOCOL",
    "sasl.mechanism": "KAFKA_SASL_MECHANISM",
    "sasl.username": "KAFKA_SASL_USERNAME",
    "sasl.password": "KAFKA_SASL_PASSWORD",
}


@dataclass(frozen=True)
class KafkaSecurity:
    """Passwords of the admin and of every user in the access table, for one broker's data dir."""

    admin_password: str
    passwords: dict[str, str] = field(default_factory=dict)

    @classmethod
    def generate(cls) -> KafkaSecurity:
        return cls(secrets.token_urlsafe(18), {user: secrets.token_urlsafe(18) for user in CLIENTS})

    @classmethod
    def load_or_create(cls, home: Path) -> KafkaSecurity:
        """The passwords saved beside the broker's data (the same users come back after a restart), or new ones."""
        path = Path(home) / CREDENTIALS_FILE
        if path.exists():
            try:
                saved = json.loads(path.read_text())
                security = cls(saved["admin"], dict(saved["users"]))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise DevstackError(
                    f"kafka: cannot read the saved credentials {path} ({exc}); remove {path.parent} and start again"
                ) from None
            missing = set(CLIENTS) - set(security.passwords)
            if not missing:
                return security
            security = cls(security.admin_password, {**security.passwords, **cls.generate().passwords})
        else:
            security = cls.generate()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"admin": security.admin_password, "users": security.passwords}, indent=2))
        os.chmod(path, 0o600)
        return security

    def password(self, user: str) -> str:
        if user == ADMIN_USER:
            return self.admin_password
        if user not in self.passwords:
            raise DevstackError(f"kafka: no local user {user!r}; the users are {', '.join([ADMIN_USER, *CLIENTS])}")
        return self.passwords[user]

    def server_properties(self, host: str, port: int, controller_port: int) -> list[str]:
        """The listener, SASL and authorizer lines of server.properties."""
        admin, password = ADMIN_USER, self.admin_password
        return [
            f"listeners={PROTOCOL}://{host}:{port},CONTROLLER://{host}:{controller_port}",
            f"advertised.listeners={PROTOCOL}://{host}:{port}",
            "controller.listener.names=CONTROLLER",
            f"inter.broker.listener.name={PROTOCOL}",
            f"listener.security.protocol.map=CONTROLLER:SASL_PLAINTEXT,{PROTOCOL}:SASL_PLAINTEXT",
            f"sasl.enabled.mechanisms={MECHANISM}",
            f"sasl.mechanism.inter.broker.protocol={MECHANISM}",
            "sasl.mechanism.controller.protocol=PLAIN",
            "listener.name.controller.sasl.enabled.mechanisms=PLAIN",
            "listener.name.controller.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule"
            f' required username="{admin}" password="{password}" user_{admin}="{password}";',
            f"listener.name.{PROTOCOL.lower()}.{MECHANISM.lower()}.sasl.jaas.config="
            "org.apache.kafka.common.security.scram.ScramLoginModule required"
            f' username="{admin}" password="{password}";',
            f"authorizer.class.name={AUTHORIZER}",
            f"super.users=User:{admin}",
            "allow.everyone.if.no.acl.found=false",
            "auto.create.topics.enable=false",
        ]

    def format_arguments(self) -> list[str]:
        """`kafka-storage format` arguments that store the admin's SCRAM credential in the first metadata."""
        return ["--add-scram", f"{MECHANISM}=[name={ADMIN_USER},password={self.admin_password}]"]

    def client_config(self, user: str) -> dict[str, str]:
        """librdkafka settings that log in as `user` (no bootstrap.servers)."""
        return {
            "security.protocol": PROTOCOL.lower(),
            "sasl.mechanism": MECHANISM,
            "sasl.username": user,
            "sasl.password": self.password(user),
        }

    def client_env(self, user: str) -> dict[str, str]:
        """The KAFKA_* variables of the feedback services and the executor that log in as `user`."""
        return {CLIENT_ENV[name]: value for name, value in self.client_config(user).items()}


def upsert_users(admin: Any, security: KafkaSecurity, timeout: float) -> None:
    """SCRAM credentials of every table user, through the admin API (a repeated upsert is harmless)."""
    from confluent_kafka.admin import ScramCredentialInfo, ScramMechanism, UserScramCredentialUpsertion

    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS)
    upserts = [
        UserScramCredentialUpsertion(user, info, password.encode(), secrets.token_bytes(16))
        for user, password in security.passwords.items()
    ]
    for user, future in admin.alter_user_scram_credentials(upserts, request_timeout=timeout).items():
        try:
            future.result(timeout=timeout)
        except Exception as exc:  # a KafkaException with the broker's reason
            raise DevstackError(f"kafka: cannot create the SCRAM user {user!r}: {exc}") from None


def acl_bindings(names: KafkaNames) -> list[Any]:
    """The table's ACLs of every user as confluent_kafka AclBindings."""
    return [to_binding(acl) for user in CLIENTS for acl in acls(user, names)]


def to_binding(acl: Acl) -> Any:
    from confluent_kafka.admin import AclBinding, AclOperation, AclPermissionType, ResourcePatternType, ResourceType

    return AclBinding(
        ResourceType[acl.resource.upper()],
        acl.name,
        ResourcePatternType.LITERAL if acl.pattern == "literal" else ResourcePatternType.PREFIXED,
        f"User:{acl.principal}",
        "*",
        AclOperation[acl.operation.upper()],
        AclPermissionType.ALLOW,
    )


def create_acls(admin: Any, names: KafkaNames, timeout: float) -> int:
    """Create the table's ACLs for `names` (existing ones stay); returns how many bindings were sent."""
    bindings = acl_bindings(names)
    for binding, future in admin.create_acls(bindings, request_timeout=timeout).items():
        try:
            future.result(timeout=timeout)
        except Exception as exc:
            raise DevstackError(f"kafka: cannot create the ACL {binding}: {exc}") from None
    return len(bindings)
