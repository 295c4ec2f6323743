"""`decision_log.mask` hides configured fields of every decision line."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from gateway.config import load_config
from gateway.config.derive import derive_config
from gateway.errors import ConfigError

SHIPPED_CONFIG = Path(__file__).resolve().parents[2] / "config.yaml"


@pytest.mark.asyncio(loop_scope="session")
async def test_configured_fields_masked(gateway_factory, sample_api, http, caplog):
    gateway = await gateway_factory(sample_api.url, {("decision_log", "mask"): ["subject"]})
    caplog.set_level(logging.INFO, logger="gateway.decision")

    async with http.get(gateway.url + "/api/1/chats/1/",
                        headers=gateway.bearer("u-op-1")) as response:
        await response.read()

    [decision] = [record for record in caplog.records
                  if record.name == "gateway.decision"]
    assert response.status == 200
    assert decision.subject == "***"
    assert decision.role == "chat_operator"


def test_unknown_masked_field_rejected(tmp_path):
    config = derive_config(SHIPPED_CONFIG, tmp_path / "config.yaml",
                           {("decision_log", "mask"): ["token"]})

    with pytest.raises(ConfigError) as caught:
        load_config(config)

    assert caught.value.key == "decision_log.mask[0]"
