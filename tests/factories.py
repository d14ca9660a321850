import factory
from django.contrib.auth import get_user_model

from accounts.crypto import secret_encrypt
from accounts.models import Account, ApiKey, Environment, Membership
from accounts.services import api_key_issue


class AccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Account
        django_get_or_create = ["name"]

    name = factory.Sequence(lambda n: f"Account {n}")


class EnvironmentFactory(factory.django.DjangoModelFactory):
    """`client_secret` is a factory parameter: the plain secret, stored encrypted."""

    class Meta:
        model = Environment

    class Params:
        client_secret = factory.Sequence(lambda n: f"secret-{n}-abcdefghijklmnop")

    account = factory.SubFactory(AccountFactory)
    name = factory.Sequence(lambda n: f"env-{n}")
    client_secret_encrypted = factory.LazyAttribute(lambda o: secret_encrypt(o.client_secret))


class ApiKeyFactory(factory.django.DjangoModelFactory):
    """Build with ApiKeyFactory(); the plain key is on `.plain` (set before saving)."""

    class Meta:
        model = ApiKey

    environment = factory.SubFactory(EnvironmentFactory)
    scopes = factory.LazyFunction(lambda: ["send", "read"])

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        api_key = model_class(*args, **kwargs)
        api_key.plain = api_key_issue(api_key=api_key)
        api_key.save()
        return api_key


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ["username"]

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    is_staff = True
    password = factory.django.Password("correct horse battery staple")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    account = factory.SubFactory(AccountFactory)
    role = Membership.Role.SUPPORT
