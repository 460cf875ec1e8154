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
wecom_app   ``wecom_app``                the members' userids ``a|b`` and/or ``dept:ID``
dingtalk_app ``dingtalk_app``            the members' userids ``a|b`` and/or ``dept:ID``
feishu_app  ``feishu_app``               the members' user ids (or open_id…) ``a|b``
==========  ===========================  ===================================================

The three ``*_app`` kinds are the organisation's own app (``channels._app``): a work notice only its
addressee sees, as a card whose "去处理" button is the recipient's signed workspace link, with the
app's access token shared per process and per database (``channels._tokens``).

Only a channel whose message one person reads (``Channel.personal``: email and the ``*_app`` kinds,
not an app notice to a ``dept:ID``) carries that person's signed workspace link; the robots, the
webhook, the console and the file get the item's page behind the login.

The idempotency key travels as the email Message-ID, as the webhook ``Idempotency-Key`` header and
``idempotency_key`` field, as WeCom's duplicate check and Feishu's ``uuid`` on app notices, and
as the last line ``（编号 KEY）`` of every group-robot message (see
``text.key_line``), which is what a person or a bot reading the group can deduplicate on.
"""

from notifications.channels.base import Channel, DeliveryError, build_channel

__all__ = ["Channel", "DeliveryError", "build_channel"]
