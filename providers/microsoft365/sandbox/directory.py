"""The sandbox's Microsoft Entra directory: organisations (tenants) and their users, each with a mailbox."""

from __future__ import annotations

from dataclasses import dataclass

# The tenant every personal Microsoft account (outlook.com, hotmail.com) signs in under.
CONSUMERS_TENANT_ID = "9188040d-6c67-4c5b-b112-36a304b66dad"


@dataclass(frozen=True)
class Organisation:
    id: str  # the tenant id (a GUID): the token's ``tid``
    domain: str  # its initial domain, <name>.onmicrosoft.com: a tenant segment may name it instead of the id


@dataclass(frozen=True)
class User:
    """What Graph's ``/me`` tells of a user (https://learn.microsoft.com/en-us/graph/api/user-get)."""

    id: str  # the object id: the token's ``oid``
    display_name: str
    mail: str | None  # the primary SMTP address, as created (None: a user without an Exchange mailbox)
    user_principal_name: str
    tenant_id: str

    def me(self) -> dict[str, object]:
        """``GET /v1.0/me`` without ``$select``: Graph's default property set."""
        given, _, surname = self.display_name.partition(" ")
        return {
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users/$entity",
            "businessPhones": [],
            "displayName": self.display_name,
            "givenName": given or None,
            "jobTitle": None,
            "mail": self.mail,
            "mobilePhone": None,
            "officeLocation": None,
            "preferredLanguage": "en-GB",
            "surname": surname or None,
            "userPrincipalName": self.user_principal_name,
            "id": self.id,
        }
