from django import forms
from django.core.validators import MaxLengthValidator

from .models import Postmortem
from .postmortems import SECTION_MAX_LENGTH


class PostmortemForm(forms.ModelForm):
    class Meta:
        model = Postmortem
        fields = [*Postmortem.SECTIONS, "status"]
        widgets = {name: forms.Textarea(attrs={"rows": 8, "maxlength": SECTION_MAX_LENGTH}) for name in Postmortem.SECTIONS}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in Postmortem.SECTIONS:
            self.fields[name].max_length = SECTION_MAX_LENGTH
            self.fields[name].validators.append(MaxLengthValidator(SECTION_MAX_LENGTH))
