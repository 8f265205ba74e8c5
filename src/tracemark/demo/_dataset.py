"""The demo's fixed inputs: FAQ questions, prompt templates and the configurations compared."""

from __future__ import annotations

from dataclasses import dataclass

DEMO_EXPERIMENT = "demo: support-bot prompt comparison"
DATASET = "acme-support-faq-v3"
BATCH_SIZE = 4
JUDGE_MODEL = "gpt-4o"

# (question, expected answer, a plausible wrong answer a weaker setup gives)
QUESTIONS: tuple[tuple[str, str, str], ...] = (
    (
        "How do I reset my password?",
        "Open Settings > Security > Reset password; a reset link is emailed to you.",
        "Contact support and they will send you a new password.",
    ),
    (
        "Can I switch from monthly to yearly billing?",
        "Yes: Billing > Plan > Switch to yearly; the current month is prorated.",
        "No, the billing cycle cannot be changed after signup.",
    ),
    (
        "How do I export my data?",
        "Settings > Data > Export builds a ZIP of all projects and emails a link within 24 hours.",
        "Data export is only available on the Enterprise plan.",
    ),
    (
        "What is the API rate limit?",
        "600 requests per minute per API key; 429 responses carry a Retry-After header.",
        "The API has no rate limit.",
    ),
    (
        "How do I add a team member?",
        "Team > Invite, enter their email and pick a role: Viewer, Editor or Admin.",
        "Share your login with them; accounts are per workspace.",
    ),
    (
        "Do you support single sign-on?",
        "Yes, SAML SSO on the Business and Enterprise plans (Settings > Security > SSO).",
        "SSO is on the roadmap but not available yet.",
    ),
    (
        "How do I cancel my subscription?",
        "Billing > Plan > Cancel; access continues until the end of the paid period.",
        "Cancellation requires a phone call to our sales team.",
    ),
    (
        "Where can I find my invoices?",
        "Billing > Invoices lists every invoice as a downloadable PDF.",
        "Invoices are sent by post at the end of each quarter.",
    ),
    (
        "Is my data encrypted?",
        "Yes: AES-256 at rest and TLS 1.2 or newer in transit.",
        "Data is encrypted only on the Enterprise plan.",
    ),
    (
        "How do I turn on two-factor authentication?",
        "Settings > Security > Two-factor, then scan the QR code with an authenticator app.",
        "Two-factor authentication is enabled by default for everyone.",
    ),
    (
        "Can I restore a deleted project?",
        "Yes, within 30 days from Trash > Restore; after that it is purged.",
        "Deleted projects are removed immediately and cannot be restored.",
    ),
    (
        "What is the largest file I can upload?",
        "5 GB per file; larger files need the CLI's multipart upload.",
        "Uploads are limited to 100 MB per file.",
    ),
    (
        "How do I change the workspace owner?",
        "The current owner opens Team > Members > Transfer ownership.",
        "Ownership can only be changed by deleting and recreating the workspace.",
    ),
    (
        "Which regions can host my data?",
        "EU (Frankfurt) or US (Oregon), chosen when the workspace is created.",
        "All data is hosted in a single US region.",
    ),
    (
        "How do I get a refund?",
        "Within 14 days of a charge: Billing > Invoices > Request refund.",
        "Refunds are not offered.",
    ),
    (
        "Does the API support webhooks?",
        "Yes: Settings > Webhooks, with signed payloads and retries for 24 hours.",
        "No, poll the API for changes instead.",
    ),
)

PROMPTS: dict[str, str] = {
    "concise-v1": (
        "You are a helpful support assistant for Acme Cloud. Answer briefly.\n\n"
        "Question: {question}\n"
        "Answer:"
    ),
    "grounded-v2": (
        "You are Acme Cloud's support assistant. Answer only from the help-center excerpts\n"
        "below. If they do not contain the answer, say you don't know and offer to open a\n"
        "ticket. Never invent plans, prices or limits.\n\n"
        "Excerpts:\n{context}\n\n"
        "Question: {question}\n"
        "Answer in at most two sentences:"
    ),
}


@dataclass(frozen=True, slots=True)
class DemoConfig:
    """One configuration under comparison, with how well the simulated model does."""

    run_name: str
    model: str
    prompt_template: str
    temperature: float
    max_tokens: int
    accuracy: float  # chance of a correct answer
    faithfulness: float  # mean judge score of a correct answer
    latency_ms: float  # median latency of one call
    price_in: float  # USD per million prompt tokens
    price_out: float  # USD per million completion tokens
    fails_at_batch: int | None = None  # the simulated provider error, for realism


CONFIGS: tuple[DemoConfig, ...] = (
    DemoConfig(
        run_name="baseline",
        model="gpt-4o-mini",
        prompt_template="concise-v1",
        temperature=0.7,
        max_tokens=256,
        accuracy=0.62,
        faithfulness=0.71,
        latency_ms=820.0,
        price_in=0.15,
        price_out=0.6,
    ),
    DemoConfig(
        run_name="grounded-mini",
        model="gpt-4o-mini",
        prompt_template="grounded-v2",
        temperature=0.2,
        max_tokens=256,
        accuracy=0.81,
        faithfulness=0.9,
        latency_ms=910.0,
        price_in=0.15,
        price_out=0.6,
    ),
    DemoConfig(
        run_name="grounded-haiku",
        model="claude-3-haiku",
        prompt_template="grounded-v2",
        temperature=0.2,
        max_tokens=256,
        accuracy=0.84,
        faithfulness=0.92,
        latency_ms=760.0,
        price_in=0.25,
        price_out=1.25,
    ),
    DemoConfig(
        run_name="grounded-4o",
        model="gpt-4o",
        prompt_template="grounded-v2",
        temperature=0.0,
        max_tokens=512,
        accuracy=0.93,
        faithfulness=0.95,
        latency_ms=1450.0,
        price_in=2.5,
        price_out=10.0,
    ),
    DemoConfig(
        run_name="grounded-llama",
        model="llama3.1:8b",
        prompt_template="grounded-v2",
        temperature=0.2,
        max_tokens=256,
        accuracy=0.7,
        faithfulness=0.8,
        latency_ms=640.0,
        price_in=0.05,
        price_out=0.08,
        fails_at_batch=3,
    ),
)
