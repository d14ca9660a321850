"""Forms of the pages outside the admin: the invited person's own user."""

from django.contrib.auth import get_user_model
from django.contrib.auth.forms import UserCreationForm


class InviteeUserForm(UserCreationForm):
    """The username and password the invited person chooses. The email is the invited address,
    set before validation so the password validators compare the password with it too."""

    class Meta(UserCreationForm.Meta):
        model = get_user_model()
        fields = ("username",)

    def __init__(self, *args, email: str, **kwargs):
        super().__init__(*args, instance=get_user_model()(email=email), **kwargs)
