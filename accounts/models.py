from contextlib import suppress

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.phone_numbers import InvalidPhoneNumber, parse_phone


def validate_phone(value: str) -> None:
    try:
        parse_phone(value)
    except InvalidPhoneNumber:
        raise ValidationError(_("Enter a valid phone number."), code="invalid_phone") from None


class UserManager(BaseUserManager):
    use_in_migrations = True

    def create_user(self, phone: str, password: str | None = None, **fields):
        user = self.model(phone=parse_phone(phone), **fields)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()  # people sign in by SMS code; only staff get passwords
        user.save(using=self._db)
        return user

    def get_by_natural_key(self, username):
        # Admin login and createsuperuser look users up by what was typed: `8 911 ...` finds `+7911...`.
        with suppress(InvalidPhoneNumber):
            username = parse_phone(str(username))
        return super().get_by_natural_key(username)

    def create_superuser(self, phone: str, password: str | None = None, **fields):
        fields.update(is_staff=True, is_superuser=True)
        return self.create_user(phone, password, **fields)


class User(AbstractBaseUser, PermissionsMixin):
    """A person, known by the phone number they sign in with."""

    phone = models.CharField(_("phone"), max_length=16, unique=True, validators=[validate_phone])
    first_name = models.CharField(_("first name"), max_length=150, blank=True)
    last_name = models.CharField(_("last name"), max_length=150, blank=True)
    is_staff = models.BooleanField(_("staff status"), default=False)
    is_active = models.BooleanField(_("active"), default=True)
    date_joined = models.DateTimeField(_("date joined"), default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "phone"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        indexes = [models.Index(fields=["-date_joined"], name="user_newest")]  # the admin's list order

    def __str__(self) -> str:
        return self.phone


class PhoneChallenge(models.Model):
    """The live one-time code of a phone; its row lock serialises everything about that phone."""

    phone = models.CharField(max_length=16, unique=True)
    code_hash = models.CharField(max_length=64, blank=True)
    expires_at = models.DateTimeField(null=True)
    attempts = models.PositiveSmallIntegerField(default=0)

    def __str__(self) -> str:
        return self.phone


class CodeSend(models.Model):
    """One code sent to a phone: the per-phone send limits count these."""

    phone = models.CharField(_("phone"), max_length=16)
    sent_at = models.DateTimeField(_("sent at"), default=timezone.now)

    class Meta:
        verbose_name = _("code sent")
        verbose_name_plural = _("codes sent")
        indexes = [models.Index(fields=["phone", "sent_at"])]

    def __str__(self) -> str:
        return f"{self.phone} {self.sent_at:%Y-%m-%d %H:%M:%S}"


class CheckFailure(models.Model):
    """One refused code check: enough of them in 24 h lock the phone."""

    phone = models.CharField(_("phone"), max_length=16)
    failed_at = models.DateTimeField(_("failed at"), default=timezone.now)

    class Meta:
        verbose_name = _("refused code check")
        verbose_name_plural = _("refused code checks")
        indexes = [models.Index(fields=["phone", "failed_at"])]

    def __str__(self) -> str:
        return f"{self.phone} {self.failed_at:%Y-%m-%d %H:%M:%S}"


class HourlySendBudget(models.Model):
    """Codes sent by everyone in one clock hour, against SMS pumping."""

    hour = models.DateTimeField(unique=True)
    used = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}:00 {self.used}"


class RateCounter(models.Model):
    """Hits of one per-IP limit key in its current fixed window, when there is no Redis."""

    key = models.CharField(max_length=200, primary_key=True)
    window_start = models.BigIntegerField()
    hits = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.key} {self.hits}"
