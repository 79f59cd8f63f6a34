"""Disambiguation core: operator words + scene + history -> one explicit command, a question, or a refusal.

No ROS imports here; the node adapts messages to these classes.
"""

from vla_ros.disambiguation.dialogue import DialogueState, DialogueTurn, PendingQuestion
from vla_ros.disambiguation.resolver import ACTIONS, Draft, InstructionResolver, PendingCommand, Resolution
from vla_ros.disambiguation.scene import Scene, SceneFormatError, SceneLocation, SceneObject, load_scene_file
from vla_ros.disambiguation.vocabulary import (
    Vocabulary,
    VocabularyError,
    default_vocabulary_path,
    load_vocabulary,
)

__all__ = [
    "ACTIONS",
    "DialogueState",
    "DialogueTurn",
    "Draft",
    "InstructionResolver",
    "PendingCommand",
    "PendingQuestion",
    "Resolution",
    "Scene",
    "SceneFormatError",
    "SceneLocation",
    "SceneObject",
    "Vocabulary",
    "VocabularyError",
    "default_vocabulary_path",
    "load_scene_file",
    "load_vocabulary",
]
