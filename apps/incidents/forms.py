from django import forms

from .models import Incident, Service, Severity


class IncidentFilterForm(forms.Form):
    """The list's filters, as GET parameters (?status=…&severity=…&service=<slug>)."""

    status = forms.ChoiceField(choices=[("", "Any status"), *Incident.Status.choices], required=False)
    severity = forms.ChoiceField(choices=[("", "Any severity"), *Severity.choices], required=False)
    service = forms.ModelChoiceField(
        queryset=Service.objects.order_by("name"), to_field_name="slug", required=False, empty_label="Any service"
    )
