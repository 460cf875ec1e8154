"""Transports that deliver an ``OutgoingMessage``: one module per kind.

==========  ===========================  ===================================================
kind        module                       address means
==========  ===========================  ===================================================
console     ``console.ConsoleChannel``   shown only
file        ``file.FileChannel``         stored only (one JSON line per message)
email       ``smtp.EmailChannel``        the mailbox, ``x@y`` or ``名字 <x@y>``
webhook     ``webhook.WebhookChannel``   passed through in the JSON body
dingtalk    ``dingtalk.DingTalkChannel`` who to @: a mobile number, a userid, ``all`` or ""
wecom       ``wecom.WeComChannel``       who to @: a userid, ``@all`` or ""
feishu      ``feishu.FeishuChannel``     who to @: an open_id/user_id, ``all`` or ""
==========  ===========================  ===================================================

The idempotency key travels as the email Message-ID, as the webhook ``Idempotency-Key`` header and
``idempotency_key`` field, and as the last line ``（编号 KEY）`` of every group-robot message (see
``text.key_line``), which is what a person or a bot reading the group can deduplicate on.
"""

from notifications.channels.base import Channel, DeliveryError, build_channel

__all__ = ["Channel", "DeliveryError", "build_channel"]
