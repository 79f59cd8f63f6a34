"""Behaviour cloning for OpenVLA: demonstrations recorded in the workcell, training, closed-loop evaluation.

``record`` writes expert demonstrations as rosbag2, ``bc`` trains a policy from bags (full, LoRA or
QLoRA; cross-entropy on the action tokens only), ``evaluate_closed_loop`` measures it in the workcell
on layouts it never saw.
"""
