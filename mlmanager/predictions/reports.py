"""The PDF report of one image prediction (fpdf2): the image and its overlay, the answer with
its confidence, the members' votes and their agreement, the model and version, and the review
(status, reviewer, note, date).

fpdf2 is pure Python and draws text as text, so the report is small and its words can be
searched and copied. Text is set in DejaVu Sans, which matplotlib (a dependency) ships, so
labels and notes in any European script print as typed; the core Helvetica would only take
Latin-1. Images are handed to fpdf2 as Pillow images, never as names: fpdf2 reads a string as
a path or fetches it as a URL.
"""

from __future__ import annotations

import importlib.util
import io
from pathlib import Path
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext as _
from PIL import Image

from mlmanager.core import formatting
from mlmanager.predictions.images import overlay_png, read_file
from mlmanager.predictions.models import Prediction

# Small images (an 8×8 digit) are enlarged with nearest-neighbour to at least this many pixels
# before embedding, so a viewer shows pixels, not the blur its own smoothing makes of them.
MIN_EMBEDDED_SIDE = 256
IMAGE_BOX_MM = 80.0


def _font_path() -> Path | None:
    spec = importlib.util.find_spec("matplotlib")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "mpl-data/fonts/ttf/DejaVuSans.ttf"
    return path if path.is_file() else None


def report_file_name(prediction: Prediction) -> str:
    """The name a report is offered under: built by the server from ids, safe in a header."""
    return (
        f"model-{prediction.machine_id}-v{prediction.version_number}-prediction-{prediction.pk}.pdf"
    )


def prediction_report_pdf(prediction: Prediction, *, time_zone: Any = None) -> bytes:
    """The report of an image prediction (found with access_prediction)."""
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_creator("MLManager")
    pdf.set_title(_("Prediction report"))
    font = _font_path()
    family = "Helvetica"
    if font is not None:
        pdf.add_font("DejaVu", "", str(font))
        family = "DejaVu"
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    text = _text if family == "DejaVu" else _latin1

    answer = prediction.answer()
    segmentation = "areas" in answer
    pdf.set_font(family, size=18)
    pdf.cell(0, 10, text(_("Prediction report")), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(family, size=10)
    made = timezone.localtime(prediction.created_at, time_zone)
    lines = [
        _("Model: %(name)s, version %(number)s")
        % {"name": prediction.machine.name, "number": prediction.version_number},
        _("Prediction %(id)s, made %(when)s")
        % {"id": prediction.pk, "when": formatting.format_datetime(made)},
    ]
    image_input = (prediction.inputs or {}).get("image") or {}
    if image_input.get("name"):
        lines.append(
            _("Image: %(name)s (%(width)s × %(height)s, %(format)s)")
            % {
                "name": image_input.get("name"),
                "width": image_input.get("width"),
                "height": image_input.get("height"),
                "format": image_input.get("format"),
            }
        )
    for line in lines:
        pdf.multi_cell(0, 5, text(line), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)

    top = pdf.get_y()
    left = pdf.l_margin
    image = _picture(read_file(prediction.image))
    overlay = _picture(overlay_png(prediction))
    pdf.set_font(family, size=9)
    for index, (picture, caption) in enumerate(
        [
            (image, _("The image")),
            (overlay, _("Mask over the image") if segmentation else _("What the model looked at")),
        ]
    ):
        x = left + index * (IMAGE_BOX_MM + 10)
        if picture is not None:
            pdf.image(picture, x=x, y=top, w=IMAGE_BOX_MM, h=IMAGE_BOX_MM, keep_aspect_ratio=True)
        pdf.set_xy(x, top + IMAGE_BOX_MM + 1)
        pdf.cell(IMAGE_BOX_MM, 5, text(caption if picture is not None else _("(not available)")))
    pdf.set_xy(left, top + IMAGE_BOX_MM + 9)

    pdf.set_font(family, size=13)
    if segmentation:
        pdf.cell(0, 7, text(_("Segmentation")), new_x="LMARGIN", new_y="NEXT")
        pdf.set_font(family, size=10)
        for name, share in sorted((answer.get("areas") or {}).items(), key=lambda i: -i[1]):
            pdf.cell(0, 5, text(f"{name}: {share:.1%}"), new_x="LMARGIN", new_y="NEXT")
    else:
        pdf.cell(
            0,
            7,
            text(_("Prediction: %(label)s") % {"label": answer.get("value")}),
            new_x="LMARGIN",
            new_y="NEXT",
        )
        pdf.set_font(family, size=10)
    pdf.cell(
        0,
        5,
        text(
            _("Confidence %(confidence)s · members' agreement %(agreement)s")
            % {
                "confidence": _percent(answer.get("confidence")),
                "agreement": _percent(answer.get("agreement")),
            }
        ),
        new_x="LMARGIN",
        new_y="NEXT",
    )
    if answer.get("needs_review"):
        pdf.cell(
            0,
            5,
            text(_("Flagged for review: low agreement or low confidence.")),
            new_x="LMARGIN",
            new_y="NEXT",
        )
    votes = answer.get("votes") or []
    if votes:
        pdf.ln(2)
        pdf.cell(0, 5, text(_("Members' votes")), new_x="LMARGIN", new_y="NEXT")
        for vote in votes:
            pdf.multi_cell(0, 5, text(f"  {_vote_text(vote)}"), new_x="LMARGIN", new_y="NEXT")

    pdf.ln(3)
    pdf.set_font(family, size=13)
    pdf.cell(0, 7, text(_("Review")), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(family, size=10)
    if prediction.review_status:
        reviewed = timezone.localtime(prediction.reviewed_at, time_zone)
        reviewer = prediction.reviewed_by
        review_lines = [
            _("Status: %(status)s") % {"status": prediction.get_review_status_display()},
            _("Reviewer: %(who)s")
            % {"who": reviewer.email if reviewer is not None else _("(a deleted user)")},
            _("Reviewed %(when)s") % {"when": formatting.format_datetime(reviewed)},
        ]
        if prediction.review_label:
            review_lines.append(_("True label: %(label)s") % {"label": prediction.review_label})
        if prediction.review_note:
            review_lines.append(_("Note: %(note)s") % {"note": prediction.review_note})
    else:
        review_lines = [_("Status: not reviewed yet")]
    for line in review_lines:
        pdf.multi_cell(0, 5, text(line), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def _vote_text(vote: dict[str, Any]) -> str:
    """One member's vote: its class and confidence, or for a segmentation its confidence and
    the share of the image it gave each class."""
    parts = [f"{vote.get('member', '')}:"]
    if "label" in vote:
        parts.append(
            _("%(label)s, confidence %(confidence)s")
            % {"label": vote["label"], "confidence": _percent(vote.get("confidence"))}
        )
    else:
        areas = ", ".join(
            f"{name} {_percent(share)}" for name, share in (vote.get("areas") or {}).items()
        )
        parts.append(
            _("confidence %(confidence)s; %(areas)s")
            % {"confidence": _percent(vote.get("confidence")), "areas": areas}
        )
    return " ".join(parts)


def _picture(content: bytes | None) -> Image.Image | None:
    if content is None:
        return None
    picture: Image.Image = Image.open(io.BytesIO(content))
    picture.load()
    side = max(picture.size)
    if side < MIN_EMBEDDED_SIDE:
        factor = -(-MIN_EMBEDDED_SIDE // side)
        picture = picture.resize(
            (picture.width * factor, picture.height * factor), Image.Resampling.NEAREST
        )
    return picture


def _percent(value: Any) -> str:
    """In the reader's number format (the active preferences), like the pages."""
    return formatting.format_percent(value) if isinstance(value, int | float) else "–"


def _text(value: Any) -> str:
    return str(value)


def _latin1(value: Any) -> str:
    """Without the DejaVu font, what Helvetica cannot print becomes "?"."""
    return str(value).encode("latin-1", "replace").decode("latin-1")
