"""The episode dataset format (docs/format.md): spec, card, writer, reader. Imports no other part."""

from dreamstream.datasets.card import FORMAT, FORMAT_VERSION, DatasetCard
from dreamstream.datasets.episodes import Episode, EpisodeIndex
from dreamstream.datasets.errors import DatasetError
from dreamstream.datasets.reader import Chunk, Dataset, decode_chunk, decode_sample
from dreamstream.datasets.records import CommitRecord, SampleRow
from dreamstream.datasets.scores import ReferenceScores, normalised_score
from dreamstream.datasets.selection import EpisodeData, Episodes
from dreamstream.datasets.spec import ActionSpec, EpisodeSpec, FieldSpec, SpecError, spec_from_spaces
from dreamstream.datasets.tar import tar_samples
from dreamstream.datasets.writer import EpisodeWriter, WriterConfig

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "ActionSpec",
    "Chunk",
    "CommitRecord",
    "Dataset",
    "DatasetCard",
    "DatasetError",
    "Episode",
    "EpisodeData",
    "EpisodeIndex",
    "Episodes",
    "EpisodeSpec",
    "EpisodeWriter",
    "FieldSpec",
    "ReferenceScores",
    "SampleRow",
    "SpecError",
    "WriterConfig",
    "decode_chunk",
    "decode_sample",
    "normalised_score",
    "spec_from_spaces",
    "tar_samples",
]
