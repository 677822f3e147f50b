"""Live trading on Zerodha Kite Connect.

* ``server``       -- a faithful local Kite server (REST + ticker) for tests and dry runs
* ``feed``         -- ``KiteTickerFeed``: the streaming tick feed (websocket, binary packets)
* ``instruments``  -- the daily instruments dump, cached on disk, as an ``InstrumentTable``
* ``auth``         -- login (request token -> access token), the token file, log redaction
* ``broker``       -- ``KiteBroker``: orders, order tracking, fills, limits, reconciliation

Nothing here imports ``kiteconnect`` at import time: ``pip install hftcore[kite]`` brings it.
"""
