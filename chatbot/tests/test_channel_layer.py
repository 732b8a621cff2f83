from typing import Any

import pytest
from channels.layers import get_channel_layer
from channels_redis.core import RedisChannelLayer
from django.conf import settings


@pytest.mark.asyncio
async def test_a_message_crosses_between_two_independent_layer_instances():
    config: Any = settings.CHANNEL_LAYERS["default"]["CONFIG"]
    sender = RedisChannelLayer(**config)
    receiver = RedisChannelLayer(**config)
    channel = await receiver.new_channel()
    await receiver.group_add("probe-group", channel)
    try:
        await sender.group_send("probe-group", {"type": "probe.message", "text": "hello"})
        message = await receiver.receive(channel)
    finally:
        await receiver.group_discard("probe-group", channel)
        await sender.close_pools()
        await receiver.close_pools()
    assert message == {"type": "probe.message", "text": "hello"}


def test_the_default_layer_is_redis():
    assert isinstance(get_channel_layer(), RedisChannelLayer)
