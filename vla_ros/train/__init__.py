"""Behaviour cloning for OpenVLA from demonstration bags.

``record`` writes scripted-expert (or DAgger) demonstrations in the workcell as rosbag2; the run
itself is :func:`vla_ros.train.loop.train`, configured by :class:`vla_ros.train.config.TrainConfig`,
fed by :mod:`.data`, with the model of :mod:`.model`, the losses of :mod:`.objectives` and the
outputs of :mod:`.checkpoints`. How a trained policy does is measured in :mod:`vla_ros.eval`.
"""
