"""Shadow traffic: the Aliyun client (aliyun), the runner that mirrors and compares (runner), the
comparators (compare), the bounded record store (records), and the HTML report (report).

Import the module you need: the report's drawing code has no business loading when the proxy starts.
"""
