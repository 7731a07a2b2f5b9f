from django import forms

from apps.accounts import roles

from .models import Incident, Service, Severity


class IncidentFilterForm(forms.Form):
    """The list's filters, as GET parameters (?status=…&severity=…&service=<slug>)."""

    status = forms.ChoiceField(choices=[("", "Any status"), *Incident.Status.choices], required=False)
    severity = forms.ChoiceField(choices=[("", "Any severity"), *Severity.choices], required=False)
    service = forms.ModelChoiceField(
        queryset=Service.objects.none(), to_field_name="slug", required=False, empty_label="Any service"
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["service"].queryset = roles.scoped(Service.objects.order_by("name"), user, team="team")
