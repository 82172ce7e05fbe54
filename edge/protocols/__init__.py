"""Client protocols: each adapter turns its protocol's requests into calls for the core
(edge/core/) and the core's outcomes into its protocol's answers.

* `rest.py`: REST/JSON over HTTP (routes from `google.api.http`), the first adapter;
  `rest_stream.py` writes its server streams, edge/batch.py and edge/compose.py run
  their items and parts through it.
* `websocket.py`: streaming methods over WebSocket (the handshake through the core's
  stages); `websocket_session.py` carries one socket's frames.

A new protocol is a module here plus one branch in edge/app.py's dispatch (on the ASGI
scope type, then the content type).
"""
