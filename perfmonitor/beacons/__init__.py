"""Browser beacons: what the JavaScript client sends and what it becomes.

``schema`` validates a batch and each event (the same tables document the
collect API in the OpenAPI schema); ``records`` turns accepted events into
rows and rollup series through the capture buffer; ``clients`` classifies the
sender (bots, device class) and keys the throttle without storing the IP.
"""
