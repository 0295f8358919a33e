"""Pools every sandbox's generated customers, people and catalogues draw from (fixed: data must not drift).

The place names are New Zealand's (``NEW_ZEALAND``): the first sandbox served Xero, whose spec examples are an NZ
organisation. A provider whose examples live elsewhere adds a ``Locale`` here rather than a pool of its own
(QuickBooks' sample companies and Stripe's fixture account are American: ``UNITED_STATES``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

FIRST_NAMES = (
    "Olivia", "Liam", "Charlotte", "Noah", "Isla", "Jack", "Amelia", "Oliver", "Mia", "Leo", "Harper", "Hunter",
    "Ava", "George", "Sophie", "Lucas", "Ella", "Mason", "Grace", "Arlo", "Zoe", "Theo", "Ruby", "Luca", "Lily",
    "William", "Aria", "James", "Emily", "Thomas", "Hana", "Nikau", "Aroha", "Tane", "Maia", "Wiremu", "Priya",
    "Arjun", "Mei", "Sione",
)  # fmt: skip
LAST_NAMES = (
    "Smith", "Wilson", "Williams", "Brown", "Taylor", "Jones", "Anderson", "Thompson", "Walker", "Harris", "Martin",
    "Clarke", "Robinson", "White", "Kelly", "Young", "King", "Campbell", "Scott", "Hall", "Ngata", "Parata",
    "Tuhoe", "Patel", "Singh", "Chen", "Wang", "Li", "Nguyen", "Fifita", "Tupou", "Reid", "Murray", "Stewart",
    "Morgan", "Hughes", "Baker", "Cooper", "Turner", "Evans", "Collins", "Edwards", "Fraser",
)  # fmt: skip
COMPANY_WORDS = (
    "Kauri", "Harbour", "Summit", "Fern", "Pacific", "Southern", "Tui", "Kiwi", "Totara", "Coastal", "Alpine",
    "Riverstone", "Bluegum", "Ironsand", "Greenstone", "Tasman", "Matai", "Pohutukawa", "Silverdale", "Waitemata",
    "Rimu", "Kea", "Manuka", "Northland", "Canterbury", "Otago", "Westport", "Redwood", "Longbay", "Eastgate",
)  # fmt: skip
COMPANY_TRADES = (
    "Builders", "Logistics", "Engineering", "Design", "Plumbing", "Consulting", "Electrical", "Foods", "Coffee",
    "Landscaping", "Print", "Marine", "Motors", "Health", "Media", "Software", "Joinery", "Cleaning", "Events",
    "Security", "Trading", "Outfitters", "Nurseries", "Surveyors", "Brewing", "Studios", "Supplies", "Freight",
    "Accounting", "Dental", "Roofing",
)  # fmt: skip
COMPANY_SUFFIXES = ("Ltd", "Limited", "& Co", "Group", "Partners")
# (code prefix, name, description, sale price in cents): a small business's catalogue of services and goods.
PRODUCTS = (
    ("DEV", "Developer hour", "Software development, per hour", 16_500),
    ("CON", "Consulting hour", "Business consulting, per hour", 19_500),
    ("DSN", "Design package", "Brand and logo design package", 125_000),
    ("WEB", "Website build", "Five page website build", 480_000),
    ("HOST", "Hosting - monthly", "Managed hosting, one month", 4_900),
    ("SUP", "Support retainer", "Monthly support retainer", 60_000),
    ("TRN", "Training session", "Half-day on-site training", 85_000),
    ("AUD", "Site audit", "Accessibility and performance audit", 150_000),
    ("LAP", "Laptop stand", "Aluminium laptop stand", 8_995),
    ("KBD", "Wireless keyboard", "Wireless keyboard, NZ layout", 12_900),
    ("MON", "27in monitor", "27 inch 4K monitor", 64_900),
    ("CBL", "USB-C cable", "USB-C cable, 2 m", 2_495),
    ("BAG", "Courier bag", "Courier bag, large", 450),
    ("PAP", "Copy paper", "A4 copy paper, box of 5 reams", 4_200),
    ("INK", "Printer ink", "Printer ink cartridge, black", 5_650),
    ("CHR", "Office chair", "Ergonomic office chair", 39_900),
    ("DSK", "Standing desk", "Electric standing desk", 89_900),
    ("COF", "Coffee beans", "Coffee beans, 1 kg", 3_800),
    ("MUG", "Branded mug", "Branded ceramic mug", 1_800),
    ("TEE", "Branded t-shirt", "Branded organic cotton t-shirt", 3_500),
    ("PHN", "Phone mount", "Magnetic phone mount", 2_990),
    ("HDR", "Headset", "Noise cancelling headset", 24_900),
    ("LIC", "Software licence", "Annual software licence, one seat", 36_000),
    ("FRT", "Freight", "Freight and handling", 2_500),
)  # fmt: skip
# What an invoice line without a catalogue item says, and the references customers put on orders.
SERVICE_LINES = (
    "Professional services", "Project management", "Call-out fee", "Materials", "Travel time", "Site visit",
    "Quarterly maintenance", "Installation", "Delivery", "Expenses recharged",
)  # fmt: skip
ORDER_REFERENCES = (
    "", "", "PO 4411", "Ref: spring order", "Monthly service", "Project Kauri", "Per quote", "Web order",
)  # fmt: skip


@dataclass(frozen=True)
class Locale:
    """Where generated addresses and numbers are: ``cities`` are (city, region, postcode). Each draw takes the
    same values from ``rng`` in the same order, so records generated from a seed stay the same."""

    country: str
    country_code: str
    dialing_code: str
    mobile_prefix: str
    cities: tuple[tuple[str, str, str], ...]
    streets: tuple[str, ...]

    def street(self, rng: random.Random, highest_number: int = 480) -> str:
        return f"{rng.randint(1, highest_number)} {rng.choice(self.streets)}"

    def po_box(self, rng: random.Random) -> str:
        return f"PO Box {rng.randint(100, 99999)}"

    def local_number(self, rng: random.Random) -> str:
        return f"{rng.randint(200, 999)} {rng.randint(1000, 9999)}"

    def mobile_number(self, rng: random.Random) -> str:
        return f"{self.mobile_prefix} {rng.randint(100, 999)} {rng.randint(1000, 9999)}"

    def tax_number(self, rng: random.Random) -> str:
        return f"{rng.randint(10, 99)}-{rng.randint(100, 999)}-{rng.randint(100, 999)}"


_NZ_STREETS = (
    "Queen Street", "Victoria Street", "Ponsonby Road", "Lambton Quay", "Colombo Street", "George Street",
    "Cuba Street", "Dominion Road", "Great North Road", "Karangahape Road", "Tory Street", "Riccarton Road",
    "Cameron Road", "Grey Street", "Trafalgar Street", "Devon Street",
)  # fmt: skip
_NZ_CITIES = (
    ("Auckland", "Auckland", "1010"), ("Wellington", "Wellington", "6011"), ("Christchurch", "Canterbury", "8011"),
    ("Hamilton", "Waikato", "3204"), ("Tauranga", "Bay of Plenty", "3110"), ("Dunedin", "Otago", "9016"),
    ("Napier", "Hawke's Bay", "4110"), ("Nelson", "Nelson", "7010"), ("Queenstown", "Otago", "9300"),
    ("Palmerston North", "Manawatu", "4410"), ("New Plymouth", "Taranaki", "4310"), ("Whangarei", "Northland", "0110"),
)  # fmt: skip
NEW_ZEALAND = Locale("New Zealand", "NZ", "64", "21", _NZ_CITIES, _NZ_STREETS)  # GST numbers: 12-345-678

_US_STREETS = (
    "Main Street", "Oak Avenue", "Maple Drive", "Cedar Lane", "Elm Street", "Washington Avenue", "Lake Shore Drive",
    "Park Avenue", "Sunset Boulevard", "Market Street", "Mission Street", "Pine Street", "Broadway", "Grand Avenue",
)  # fmt: skip
_US_CITIES = (
    ("San Francisco", "CA", "94107"), ("Mountain View", "CA", "94043"), ("San Diego", "CA", "92101"),
    ("Seattle", "WA", "98101"), ("Portland", "OR", "97201"), ("Austin", "TX", "78701"), ("Denver", "CO", "80202"),
    ("Chicago", "IL", "60601"), ("Boston", "MA", "02108"), ("New York", "NY", "10001"), ("Phoenix", "AZ", "85004"),
    ("Atlanta", "GA", "30303"),
)  # fmt: skip
# QuickBooks' sample companies and Stripe's fixture account are American (their docs use US addresses and phones).
UNITED_STATES = Locale("USA", "US", "1", "(415)", _US_CITIES, _US_STREETS)
