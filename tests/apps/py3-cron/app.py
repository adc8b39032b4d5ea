"""Gyre test guest for the cron trigger, built as Spin's cron trigger
plugin's Python sample is (componentize-py against the `spin-cron` world of
`fermyon:spin-cron@2.0.0`, with spin-sdk 3's interfaces).

Each run counts itself in the default key-value store, reports to
`{{ report_url }}` (outbound HTTP) when it starts and when it ends, and in
between sleeps `{{ sleep_ms }}` milliseconds. `{{ fail }}` = "true" makes the
run return the plugin's `error.other`.
"""

import time

import wit_world
from wit_world.imports import cron_types
from wit_world.types import Err
from spin_sdk import key_value, variables
from spin_sdk.http import Request, send


def report(url, what, run, timestamp):
    send(Request("POST", f"{url}/{what}?run={run}&scheduled={timestamp}", {}, None))


class WitWorld(wit_world.WitWorld):
    def handle_cron_event(self, metadata: cron_types.Metadata) -> None:
        url = variables.get("report_url")
        store = key_value.open_default()
        run = int((store.get("runs") or b"0").decode()) + 1
        store.set("runs", str(run).encode())
        print(f"run {run} scheduled at {metadata.timestamp}")
        report(url, "start", run, metadata.timestamp)
        time.sleep(int(variables.get("sleep_ms")) / 1000)
        report(url, "end", run, metadata.timestamp)
        if variables.get("fail") == "true":
            raise Err(cron_types.Error_Other(f"run {run} was asked to fail"))
