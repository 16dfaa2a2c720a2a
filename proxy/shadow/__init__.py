"""Shadow traffic's parts: the Aliyun client (aliyun), the comparators (compare), the bounded record
store (records), and the HTML report (report). The mirror that drives them is an observer
(proxy/observers/mirror.py); who answers a call is decided on the request path (proxy/sides.py).

Import the module you need: the report's drawing code has no business loading when the proxy starts.
"""
