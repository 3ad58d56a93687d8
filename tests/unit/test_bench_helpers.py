"""The benchmark's billing arithmetic (bench/calc.py): pure functions, no timing asserted."""

from __future__ import annotations

import base64

import pytest

from bench import calc


def test_item_size_counts_names_and_values_by_dynamodbs_rules() -> None:
    item = {
        "hook": {"S": "acct#hk_1"},  # 4 + 9
        "attempt": {"N": "1"},  # 7 + (1 digit -> 1 byte + 1)
        "at": {"N": "1795428000.125"},  # 2 + (13 significant digits -> 7 bytes + 1)
        "message": {"B": base64.b64encode(b"\x00" * 10).decode()},  # 7 + 10
        "ok": {"BOOL": True},  # 2 + 1
        "tags": {"L": [{"S": "a"}, {"S": "bc"}]},  # 4 + 3 + (1 + 1) + (1 + 2)
    }
    assert calc.item_size(item) == 13 + 9 + 10 + 17 + 3 + 12


def test_numbers_are_sized_by_significant_digits() -> None:
    assert calc.attribute_value_size({"N": "100"}) == 2  # trailing zeros trimmed: "1"
    assert calc.attribute_value_size({"N": "-0.0012"}) == 2
    assert calc.attribute_value_size({"N": "123456"}) == 4


def test_write_and_read_units_round_up_per_item() -> None:
    assert calc.write_units(0) == 1
    assert calc.write_units(1024) == 1
    assert calc.write_units(1025) == 2
    assert calc.read_units(100, consistent=False) == 0.5
    assert calc.read_units(4097, consistent=True) == 2.0


def test_sqs_bills_each_64_kib_chunk_as_a_request() -> None:
    assert calc.sqs_billed_requests(0) == 1
    assert calc.sqs_billed_requests(65_536) == 1
    assert calc.sqs_billed_requests(65_537) == 2


@pytest.mark.parametrize(("records", "calls"), [(1, 1), (10, 1), (11, 2), (100, 10), (1000, 100)])
def test_the_event_source_mapping_receives_and_deletes_ten_at_a_time(records: int, calls: int) -> None:
    assert calc.esm_calls(records) == (calls, calls)


def test_lambda_duration_is_billed_by_the_millisecond() -> None:
    assert calc.gb_seconds(512, 0.0001) == pytest.approx(0.5 * 0.001)
    assert calc.gb_seconds(1024, 1.0) == pytest.approx(1.0)


def test_cost_per_million_deliveries() -> None:
    prices = {
        "lambda_requests_per_million": 0.2,
        "lambda_gb_second_arm64": 0.0000133334,
        "sqs_requests_per_million": 0.4,
        "dynamodb_write_units_per_million": 0.625,
        "dynamodb_read_units_per_million": 0.125,
        "cloudwatch_logs_ingest_per_gb": 0.5,
    }
    usage = calc.Usage(
        lambda_requests=0.02,
        lambda_gb_seconds=0.004,
        sqs_requests=0.6,
        dynamodb_write_units=1.0,
        dynamodb_read_units=0.0,
        log_bytes=500,
    )
    cost = calc.cost_per_million(usage, prices)
    assert cost["lambda_requests"] == pytest.approx(0.004)
    assert cost["lambda_duration"] == pytest.approx(0.0533, abs=1e-4)
    assert cost["sqs_requests"] == pytest.approx(0.24)
    assert cost["dynamodb_writes"] == pytest.approx(0.625)
    assert cost["total"] == pytest.approx(0.004 + 0.0533 + 0.24 + 0.625, abs=1e-3)
    assert cost["cloudwatch_logs"] == pytest.approx(0.25)
    assert cost["total_with_logs"] == pytest.approx(cost["total"] + 0.25, abs=1e-3)


def test_markdown_table_escapes_pipes() -> None:
    table = calc.markdown_table([["a|b", "1"]], ["name", "value"])
    assert table.splitlines() == ["| name | value |", "| --- | --- |", "| a\\|b | 1 |"]


def test_the_returned_mail_split_depends_on_the_file_name_only() -> None:
    from bench.returned_mail import half

    names = [f"lhost-x-{i:02}.eml" for i in range(40)]
    assert [half(n) for n in names] == [half(n) for n in names]
    assert {half(n) for n in names} == {"dev", "held-out"}


def test_a_returned_message_is_right_only_with_every_recipients_class_status_and_code() -> None:
    from bench.returned_mail import judge
    from webhooks.returned_mail.parser import Failure, Report

    want = [{"reason": "userunknown", "status": "5.1.1", "replycode": "550"}]
    text = "550 5.1.1 <a@example.org>... User unknown"
    report = Report(kind="failure", failures=[Failure("a@example.org", 550, "5.1.1", "x")])
    assert judge(report, want, text) == (True, True)
    wrong_status = Report(kind="failure", failures=[Failure("a@example.org", 550, "5.1.2", "x")])
    assert judge(wrong_status, want, text) == (False, False)
    # a status the message does not carry is judged by its class alone (strictly, it is still wrong)
    assert judge(wrong_status, want, "550 user unknown") == (True, False)
    assert judge(Report(), want, text) == (False, False)  # the recipient not found
    assert judge(report, [{"reason": "vacation", "status": "", "replycode": ""}], text) == (False, False)
