"""{% load assist_tags %}{% assistance incident %}: the responder-assistance panel of
an incident page (summary, runbooks, similar past incidents, postmortem link)."""

from django import template

from apps.incidents import triage
from apps.incidents.models import Incident

from .. import postmortems, similar
from ..models import IncidentSummary, Postmortem

register = template.Library()


@register.inclusion_tag("assist/_assistance.html")
def assistance(incident):
    if not isinstance(incident, Incident):
        raise template.TemplateSyntaxError("assistance takes an incident")
    return {
        "incident": incident,
        "llm_status": triage.llm_status(),
        "summary": IncidentSummary.objects.filter(incident=incident).first(),
        "runbooks": similar.matching_runbooks(incident),
        "similar": similar.similar_incidents(incident),
        "postmortem": Postmortem.objects.filter(incident=incident).only("status", "drafted_by").first(),
        "postmortem_eligible": postmortems.eligible(incident),
    }


@register.filter
def duration_text(delta):
    """A timedelta as '42 min' or '3 h 5 min'."""
    return postmortems.duration_text(delta)
