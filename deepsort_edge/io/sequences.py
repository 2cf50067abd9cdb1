"""MOTChallenge sequence folders: ``seqinfo.ini``, ``img1/``, ``det/det.txt``, ``gt/gt.txt``.

Example:
    >>> seq = MOTSequence.from_folder("MOT15/train/PETS09-S2L1")  # doctest: +SKIP
    >>> seq.name, seq.num_frames, seq.image_path(1).name  # doctest: +SKIP
    ('PETS09-S2L1', 795, '000001.jpg')
"""

from __future__ import annotations

import configparser
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .mot_rows import MAX_FRAME, MOTFormatError

__all__ = ["MOTSequence", "SequenceInfo", "find_sequences", "read_seqinfo"]


@dataclass(frozen=True)
class SequenceInfo:
    """The ``[Sequence]`` section of a ``seqinfo.ini``."""

    name: str
    frame_rate: float
    length: int
    width: int | None = None
    height: int | None = None
    im_dir: str = "img1"
    im_ext: str = ".jpg"


def read_seqinfo(path: str | Path) -> SequenceInfo:
    """Read a MOTChallenge ``seqinfo.ini``.

    Raises:
        FileNotFoundError: The file does not exist.
        MOTFormatError: The file is not an ini file, lacks a ``[Sequence]``
            section, ``frameRate`` or ``seqLength``, or a value is not a
            number or out of range (``frameRate`` must be positive,
            ``seqLength`` in ``[0, MAX_FRAME]``, sizes positive).

    Example:
        >>> info = read_seqinfo("MOT15/train/PETS09-S2L1/seqinfo.ini")  # doctest: +SKIP
        >>> info.frame_rate, info.length  # doctest: +SKIP
        (7.0, 795)
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"seqinfo.ini not found: {path}")
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError) as exc:
        reason = " ".join(str(exc).split())
        raise MOTFormatError(f"{path}: not a valid ini file ({reason})") from None
    if "Sequence" not in parser:
        raise MOTFormatError(f"{path}: expected a [Sequence] section")
    section = parser["Sequence"]
    try:
        width = section.get("imWidth")
        height = section.get("imHeight")
        info = SequenceInfo(
            name=section.get("name", path.parent.name),
            frame_rate=float(section["frameRate"]),
            length=int(section["seqLength"]),
            width=int(width) if width else None,
            height=int(height) if height else None,
            im_dir=section.get("imDir", "img1"),
            im_ext=section.get("imExt", ".jpg"),
        )
    except KeyError as exc:
        raise MOTFormatError(f"{path}: missing key {exc.args[0]!r} in [Sequence]") from None
    except ValueError as exc:
        raise MOTFormatError(f"{path}: bad value in [Sequence] ({exc})") from None
    if not (np.isfinite(info.frame_rate) and info.frame_rate > 0):
        raise MOTFormatError(f"{path}: frameRate must be a positive number, got {section['frameRate']!r}")
    if not 0 <= info.length <= MAX_FRAME:
        raise MOTFormatError(f"{path}: seqLength must be in [0, {MAX_FRAME:,}], got {info.length}")
    for key, value in (("imWidth", info.width), ("imHeight", info.height)):
        if value is not None and value <= 0:
            raise MOTFormatError(f"{path}: {key} must be positive, got {value}")
    return info


@dataclass(frozen=True)
class MOTSequence:
    """A MOTChallenge sequence folder: ``seqinfo.ini``, ``img1/``, ``det/``, ``gt/``.

    Any of the parts may be missing; check the ``*_path`` attributes
    (None when absent) before use.
    """

    root: Path
    info: SequenceInfo | None
    det_path: Path | None
    gt_path: Path | None
    image_dir: Path | None

    @property
    def name(self) -> str:
        """Sequence name from seqinfo.ini, else the folder name."""
        return self.info.name if self.info is not None else self.root.name

    @classmethod
    def from_folder(cls, root: str | Path) -> MOTSequence:
        """Inspect a sequence folder.

        Raises:
            FileNotFoundError: ``root`` is not a folder.
            MOTFormatError: Its ``seqinfo.ini`` is malformed.
        """
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"sequence folder not found: {root}")
        ini = root / "seqinfo.ini"
        info = read_seqinfo(ini) if ini.is_file() else None
        det = root / "det" / "det.txt"
        gt = root / "gt" / "gt.txt"
        image_dir = root / (info.im_dir if info is not None else "img1")
        return cls(
            root=root,
            info=info,
            det_path=det if det.is_file() else None,
            gt_path=gt if gt.is_file() else None,
            image_dir=image_dir if image_dir.is_dir() else None,
        )

    def image_path(self, frame: int) -> Path:
        """Path of the 1-based ``frame`` image (``img1/000001.jpg`` style)."""
        if self.image_dir is None:
            raise ValueError(f"sequence {self.root} has no image folder")
        ext = self.info.im_ext if self.info is not None else ".jpg"
        return self.image_dir / f"{frame:06d}{ext}"

    @property
    def num_frames(self) -> int | None:
        """``seqLength`` from seqinfo.ini, else the number of images, else None."""
        if self.info is not None:
            return self.info.length
        if self.image_dir is not None:
            return sum(1 for _ in self.image_dir.glob("*.jpg")) or None
        return None


def find_sequences(root: str | Path, require: str = "gt") -> list[MOTSequence]:
    """Sequences in ``root``: ``root`` itself if it is one, else its sub-folders.

    Args:
        root: A sequence folder, or a folder of sequence folders.
        require: ``"gt"``, ``"det"`` or ``"images"``: keep only sequences that
            have that part.

    Returns:
        Sequences sorted by name (may be empty).
    """
    attr = {"gt": "gt_path", "det": "det_path", "images": "image_dir"}
    if require not in attr:
        raise ValueError(f"require must be one of {sorted(attr)}, got {require!r}")
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"folder not found: {root}")
    own = MOTSequence.from_folder(root)
    if getattr(own, attr[require]) is not None:
        return [own]
    found = []
    for sub in sorted(p for p in root.iterdir() if p.is_dir()):
        seq = MOTSequence.from_folder(sub)
        if getattr(seq, attr[require]) is not None:
            found.append(seq)
    return found
