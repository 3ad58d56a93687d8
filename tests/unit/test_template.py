"""template.yaml's operations wiring: every alarm notifies someone, by e-mail or through a topic given.

Every alarm's actions are one expression, the alarm topic (checked statically: an alarm added later that
notifies nobody fails here). The template's output AlarmTopicArn is that same expression, so deploying the
alarm part of the template (parameters, conditions, topic, output) on moto's CloudFormation,
once per way of configuring it, shows what the alarms notify (moto's CloudFormation creates no alarms).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from devstack.template import load_template

TEMPLATE = load_template()
ALARMS = {k: r for k, r in TEMPLATE["Resources"].items() if r["Type"] == "AWS::CloudWatch::Alarm"}
TOPIC = {"Fn::If": ["CreateAlarmTopic", {"Ref": "AlarmTopic"}, {"Ref": "AlarmTopicArn"}]}


def test_there_are_alarms() -> None:
    assert len(ALARMS) >= 3


@pytest.mark.parametrize("name", sorted(ALARMS))
def test_every_alarm_notifies_the_alarm_topic_when_it_fires_and_when_it_clears(name: str) -> None:
    properties = ALARMS[name]["Properties"]
    assert properties.get("AlarmActions") == [TOPIC], f"{name}: add AlarmActions: [{TOPIC}]"
    assert properties.get("OKActions") == [TOPIC], name


def test_the_output_names_the_topic_the_alarms_notify() -> None:
    assert TEMPLATE["Outputs"]["AlarmTopicArn"]["Value"] == TOPIC


def alarm_part() -> dict[str, Any]:
    """The template's alarm wiring alone, as plain CloudFormation."""
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Parameters": {k: TEMPLATE["Parameters"][k] for k in ("AlarmEmail", "AlarmTopicArn")},
        "Conditions": {k: TEMPLATE["Conditions"][k] for k in ("CreateAlarmTopic", "HasAlarmEmail")},
        "Resources": {k: r for k, r in TEMPLATE["Resources"].items() if k == "AlarmTopic"}
        # A stack needs a resource even when the topic is given.
        | {"Marker": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "marker"}}},
        "Outputs": {"AlarmTopicArn": TEMPLATE["Outputs"]["AlarmTopicArn"]},
    }


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


def deploy(**parameters: str) -> str:
    """The topic the alarms notify after a deploy with these parameters."""
    cloudformation = boto3.client("cloudformation", region_name="eu-west-1")
    cloudformation.create_stack(
        StackName="alarms",
        TemplateBody=json.dumps(alarm_part()),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
    )
    [stack] = cloudformation.describe_stacks(StackName="alarms")["Stacks"]
    return {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}["AlarmTopicArn"]


def topics() -> list[str]:
    listed = boto3.client("sns", region_name="eu-west-1").list_topics()["Topics"]
    return sorted(t["TopicArn"] for t in listed if not t["TopicArn"].endswith(":marker"))


def test_an_alarm_email_is_subscribed_to_the_stacks_own_topic(aws: None) -> None:
    topic = deploy(AlarmEmail="ops@example.com")
    assert topics() == [topic]
    sns = boto3.client("sns", region_name="eu-west-1")
    [subscription] = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert (subscription["Protocol"], subscription["Endpoint"]) == ("email", "ops@example.com")


def test_an_existing_topic_is_the_one_notified_and_none_is_created(aws: None) -> None:
    sns = boto3.client("sns", region_name="eu-west-1")
    existing = sns.create_topic(Name="on-call")["TopicArn"]
    assert deploy(AlarmTopicArn=existing, AlarmEmail="ignored@example.com") == existing
    assert topics() == [existing]
    assert sns.list_subscriptions()["Subscriptions"] == []


def test_without_parameters_the_stack_still_has_a_topic_to_subscribe_to(aws: None) -> None:
    topic = deploy()
    assert topics() == [topic]
    assert boto3.client("sns", region_name="eu-west-1").list_subscriptions()["Subscriptions"] == []
