"""One policy served to many arms: a Ray Serve deployment with dynamic batching, and its client.

``protocol`` (the HTTP payloads) and ``client`` need neither torch nor Ray, so a robot's controller PC
can run the policy node against a remote GPU server with the package's light dependencies only;
``server`` imports Ray Serve and the model core.
"""
