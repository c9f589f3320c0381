"""Telephony, an opt-in app: add ``"django_realtime.sip"`` to ``INSTALLED_APPS``.

It answers OpenAI's ``realtime.call.incoming`` webhook (registered with the core
receiver, :mod:`django_realtime.webhooks`, when the app is ready), routes each call
with admin-managed :class:`~django_realtime.sip.models.SipRoute` rows and records it
as a :class:`~django_realtime.sip.models.SipCall`.

* :mod:`.headers`: defensive parsing of the caller's SIP headers (pure);
* :mod:`.validators`: what a route, a transfer target or ``SIP_DEFAULT_ACTION`` must be;
* :mod:`.routing`: deciding what to do with a call (nothing there calls OpenAI);
* :mod:`.actions`: accept / reject / refer / hangup, each audited and signalled;
* :mod:`.incoming`: the webhook handler;
* :mod:`.admin`, :mod:`.checks`, :mod:`.signals`.
"""
