"""Benchmarks, each against its own baseline.

The native baselines (extensions 7000, 7100, 7200) exist only in the sandbox: its ``bench``
endpoint (asterisk/conf/sandbox/) takes calls sent from ``NATIVE_SIP_PORT`` into the
``[sandbox-bench]`` context. The carrier trunk (calls from port 5070) cannot reach them.
"""

NATIVE_SIP_PORT = 5075
TRUNK_SIP_PORT = 5070  # the carrier trunk: the engine's DIDs
