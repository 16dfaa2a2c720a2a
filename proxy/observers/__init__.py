"""Observers beside the gateway: the request log, the request metrics, and the shadow mirror.

Each receives the frozen Exchange of every answered request (proxy/exchange.py) after the answer is
made; none can change or delay it. Import the module you need.
"""
