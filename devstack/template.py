"""Reads template.yaml and builds its resources on moto: the template is the one source of truth.

Tables, queues (with their redrive policies), the state machine, the functions' environment and
handlers, and the SQS event sources all come from the template; nothing here lists a name or a
property of its own. Intrinsics are resolved for what the template uses: Ref, GetAtt, Sub.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
REGION = "us-east-1"
# moto's state-machine interpreter calls AWS as this account, so everything lives there.
AWS_ACCOUNT = "123456789012"


class _Loader(yaml.SafeLoader):
    pass


def _construct(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    tag = suffix
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if tag == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    name = "Ref" if tag == "Ref" else f"Fn::{tag}"
    return {name: value}


_Loader.add_multi_constructor("!", _construct)


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    with path.open() as f:
        return yaml.load(f, Loader=_Loader)  # noqa: S506 (a SafeLoader subclass)


def check_parameter(name: str, spec: dict[str, Any], value: str) -> None:
    """Refuses a value CloudFormation would refuse, so a bad override fails here and not in a handler."""
    allowed = spec.get("AllowedValues")
    if allowed is not None and value not in [str(v) for v in allowed]:
        raise ValueError(f"{name}={value!r}: must be one of {', '.join(str(v) for v in allowed)}")
    pattern = spec.get("AllowedPattern")
    if pattern is not None and not re.fullmatch(pattern, value):
        raise ValueError(f"{name}={value!r}: must match {pattern}")
    if spec.get("Type") == "Number":
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"{name}={value!r}: must be a number") from None
        if "MinValue" in spec and number < float(spec["MinValue"]):
            raise ValueError(f"{name}={value!r}: must be at least {spec['MinValue']}")
        if "MaxValue" in spec and number > float(spec["MaxValue"]):
            raise ValueError(f"{name}={value!r}: must be at most {spec['MaxValue']}")


@dataclass
class Function:
    logical_id: str
    name: str
    code_dir: Path
    handler: str
    timeout: int
    environment: dict[str, str]

    def load(self) -> Any:
        """Imports the handler module under a unique name (every function's module is `app`)."""
        module_name, attr = self.handler.rsplit(".", 1)
        unique = f"_fn_{self.logical_id}_{module_name}"
        module = sys.modules.get(unique)
        if module is None:
            spec = importlib.util.spec_from_file_location(unique, self.code_dir / f"{module_name}.py")
            assert spec is not None
            assert spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[unique] = module
            spec.loader.exec_module(module)
        return getattr(module, attr)

    def module(self) -> ModuleType:
        self.load()
        return sys.modules[f"_fn_{self.logical_id}_{self.handler.rsplit('.', 1)[0]}"]


@dataclass
class SqsSource:
    function: str
    queue: str  # logical id
    batch_size: int
    window_seconds: int
    report_failures: bool


@dataclass
class ApiRoute:
    function: str
    path: str
    method: str
    authorized: bool


@dataclass
class Stack:
    """The template resolved for one local deployment."""

    name: str
    template: dict[str, Any]
    parameters: dict[str, str]
    physical: dict[str, dict[str, str]] = field(default_factory=dict)

    @classmethod
    def from_template(
        cls, name: str = "webhooks-local", overrides: dict[str, str] | None = None, path: Path = TEMPLATE
    ) -> Stack:
        template = load_template(path)
        parameters = {k: str(v.get("Default", "")) for k, v in template.get("Parameters", {}).items()}
        for key, value in (overrides or {}).items():
            if key not in parameters:
                raise KeyError(f"template has no parameter {key}")
            check_parameter(key, template["Parameters"][key], value)
            parameters[key] = value
        stack = cls(name, template, parameters)
        for logical_id, resource in template["Resources"].items():
            stack.physical[logical_id] = stack._names(logical_id, resource["Type"])
        return stack

    @property
    def resources(self) -> dict[str, Any]:
        return dict(self.template["Resources"])

    def _names(self, logical_id: str, kind: str) -> dict[str, str]:
        name = f"{self.name}-{logical_id}"
        arn = f"arn:aws:{{}}:{REGION}:{AWS_ACCOUNT}:{{}}"
        if kind == "AWS::SQS::Queue":
            return {
                # moto's URL form; create() records the URL the queue really got.
                "Ref": f"https://sqs.{REGION}.amazonaws.com/{AWS_ACCOUNT}/{name}",
                "Arn": arn.format("sqs", name),
                "QueueName": name,
            }
        if kind == "AWS::DynamoDB::Table":
            return {"Ref": name, "Arn": arn.format("dynamodb", f"table/{name}")}
        if kind == "AWS::Serverless::Function":
            return {"Ref": name, "Arn": arn.format("lambda", f"function:{name}")}
        if kind == "AWS::Serverless::StateMachine":
            state_machine_arn = arn.format("states", f"stateMachine:{name}")
            return {"Ref": state_machine_arn, "Arn": state_machine_arn, "Name": name}
        return {"Ref": name, "Arn": arn.format("local", name)}

    def set_queue_url(self, logical_id: str, url: str) -> None:
        self.physical[logical_id]["Ref"] = url

    # -- intrinsics -----------------------------------------------------------------------------

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if set(value) == {"Ref"}:
            ref = value["Ref"]
            if ref in self.parameters:
                return self.parameters[ref]
            if ref == "AWS::Region":
                return REGION
            if ref == "AWS::StackName":
                return self.name
            if ref == "AWS::AccountId":
                return AWS_ACCOUNT
            return self.physical[ref]["Ref"]
        if set(value) == {"Fn::GetAtt"}:
            logical_id, attribute = value["Fn::GetAtt"]
            return self.physical[logical_id][attribute]
        if set(value) == {"Fn::Sub"}:
            text = value["Fn::Sub"]
            return re.sub(r"\$\{([^}]+)\}", lambda m: str(self._sub(m.group(1))), text)
        return {k: self.resolve(v) for k, v in value.items()}

    def _sub(self, name: str) -> Any:
        if "." in name:
            logical_id, attribute = name.split(".", 1)
            return self.physical[logical_id][attribute]
        return self.resolve({"Ref": name})

    # -- reading the template -------------------------------------------------------------------

    def of_type(self, kind: str) -> dict[str, dict[str, Any]]:
        return {
            k: r.get("Properties", {}) for k, r in self.template["Resources"].items() if r["Type"] == kind
        }

    def functions(self) -> dict[str, Function]:
        defaults = self.template.get("Globals", {}).get("Function", {})
        result = {}
        for logical_id, props in self.of_type("AWS::Serverless::Function").items():
            env = {
                **self.resolve(defaults.get("Environment", {}).get("Variables", {})),
                **self.resolve(props.get("Environment", {}).get("Variables", {})),
            }
            result[logical_id] = Function(
                logical_id=logical_id,
                name=self.physical[logical_id]["Ref"],
                code_dir=ROOT / props["CodeUri"],
                handler=props["Handler"],
                timeout=int(self.resolve(props.get("Timeout", defaults.get("Timeout", 3)))),
                environment={k: str(v) for k, v in env.items()},
            )
        return result

    def environment(self) -> dict[str, str]:
        """The union of every function's environment (the local stack runs them in one process)."""
        merged: dict[str, str] = {}
        for function in self.functions().values():
            merged.update(function.environment)
        return merged

    def sqs_sources(self) -> list[SqsSource]:
        sources = []
        for logical_id, props in self.of_type("AWS::Serverless::Function").items():
            for event in props.get("Events", {}).values():
                if event["Type"] != "SQS":
                    continue
                p = event["Properties"]
                sources.append(
                    SqsSource(
                        function=logical_id,
                        queue=p["Queue"]["Fn::GetAtt"][0],
                        batch_size=int(self.resolve(p.get("BatchSize", 10))),
                        window_seconds=int(self.resolve(p.get("MaximumBatchingWindowInSeconds", 0))),
                        report_failures="ReportBatchItemFailures" in p.get("FunctionResponseTypes", []),
                    )
                )
        return sources

    def api_routes(self) -> list[ApiRoute]:
        routes = []
        for logical_id, props in self.of_type("AWS::Serverless::Function").items():
            for event in props.get("Events", {}).values():
                if event["Type"] != "Api":
                    continue
                p = event["Properties"]
                authorizer = p.get("Auth", {}).get("Authorizer")
                routes.append(ApiRoute(logical_id, p["Path"], p["Method"].upper(), authorizer != "NONE"))
        return routes

    def authorizer_function(self) -> str:
        for props in self.of_type("AWS::Serverless::Api").values():
            for authorizer in props.get("Auth", {}).get("Authorizers", {}).values():
                return str(authorizer["FunctionArn"]["Fn::GetAtt"][0])
        raise LookupError("the template's API has no authorizer")

    def state_machine_definition(self, logical_id: str) -> str:
        props = self.of_type("AWS::Serverless::StateMachine")[logical_id]
        text = (ROOT / props["DefinitionUri"]).read_text()
        for key, value in self.resolve(props.get("DefinitionSubstitutions", {})).items():
            text = text.replace("${" + key + "}", str(value))
        return text

    # -- building it on moto --------------------------------------------------------------------

    def create(self, session: boto3.Session | None = None, endpoint_url: str | None = None) -> None:
        session = session or boto3.Session(region_name=REGION)
        self._create_tables(session.client("dynamodb", endpoint_url=endpoint_url, region_name=REGION))
        self._create_queues(session.client("sqs", endpoint_url=endpoint_url, region_name=REGION))
        self._create_state_machines(
            session.client("stepfunctions", endpoint_url=endpoint_url, region_name=REGION),
            session.client("iam", endpoint_url=endpoint_url, region_name=REGION),
        )

    def _create_tables(self, dynamodb: Any) -> None:
        for logical_id, props in self.of_type("AWS::DynamoDB::Table").items():
            props = self.resolve(props)
            kwargs: dict[str, Any] = {
                "TableName": self.physical[logical_id]["Ref"],
                "AttributeDefinitions": props["AttributeDefinitions"],
                "KeySchema": props["KeySchema"],
                "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
            }
            if "GlobalSecondaryIndexes" in props:
                kwargs["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
            dynamodb.create_table(**kwargs)
            ttl = props.get("TimeToLiveSpecification")
            if ttl:
                dynamodb.update_time_to_live(TableName=kwargs["TableName"], TimeToLiveSpecification=ttl)

    def _create_queues(self, sqs: Any) -> None:
        queues = self.of_type("AWS::SQS::Queue")
        # Dead-letter queues first: a redrive policy names its target's ARN.
        ordered = sorted(queues, key=lambda q: "RedrivePolicy" in queues[q])
        for logical_id in ordered:
            props = self.resolve(queues[logical_id])
            attributes = {
                key: json.dumps(value) if isinstance(value, dict) else str(value)
                for key, value in props.items()
                if key
                in (
                    "VisibilityTimeout",
                    "MessageRetentionPeriod",
                    "MaximumMessageSize",
                    "RedrivePolicy",
                    "DelaySeconds",
                )
            }
            url = sqs.create_queue(QueueName=self.physical[logical_id]["QueueName"], Attributes=attributes)[
                "QueueUrl"
            ]
            self.set_queue_url(logical_id, url)

    def _create_state_machines(self, stepfunctions: Any, iam: Any) -> None:
        machines = self.of_type("AWS::Serverless::StateMachine")
        if not machines:
            return
        role = iam.create_role(
            RoleName=f"{self.name}-states",
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
        )["Role"]["Arn"]
        for logical_id in machines:
            stepfunctions.create_state_machine(
                name=self.physical[logical_id]["Name"],
                definition=self.state_machine_definition(logical_id),
                roleArn=role,
                type="STANDARD",
            )
