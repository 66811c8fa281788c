"""What a request asks of the model and of its attached context, read from the ask's own words.

Words are not tasks: every pattern below looks at how a word is used. A name in backticks (`race`,
`debug`), a log level, an "architecture: arm64" key or an ARCHITECTURE.md file is not an ask, so quoted
names, file names and `key: value` settings are blanked before matching, and each signal needs a verb or a
construction around its word ("design *the* …", "security review", "*is* this double-checked locking
correct"). The escalation model (`escalation.py`) weighs these signals; the size of the attachment only
ever multiplies a signal that asks something of the whole attachment, it never escalates on its own.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, replace

ASK_HEAD_CHARS = 600
ASK_TAIL_CHARS = 300

# Names and settings that carry telling words without asking anything.
_QUOTED = re.compile(r"`[^`\n]{1,80}`")
_FILE_NAME = re.compile(r"\b[\w.-]+\.(?:md|py|ts|js|go|rs|java|ya?ml|json|toml|txt|cfg|ini|conf)\b", re.I)
_SETTING = re.compile(
    r"(?<![\w.-])[\w.-]+:[ \t]*(?=[\w.-]*\d)[\w.-]+"
)  # "architecture: arm64", "python: 3.12"
_LOG_LEVEL = re.compile(r"\b(?:log(?:ging)? level|level) (?:to |=)?\s*(?:debug|info|warn\w*|error|trace)\b")
_HYPHEN_FLAG = re.compile(r"(?<![\w-])-{1,2}[a-z][\w-]*")  # -race, --debug, -O2 is kept apart below


def _top_level(pattern: str) -> list[str]:
    """The top-level alternatives of a regular expression (split at `|` outside groups and classes)."""
    parts: list[str] = []
    current: list[str] = []
    depth, in_class, i = 0, False, 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            current.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char in "()":
            depth += 1 if char == "(" else -1
        if char == "|" and depth == 0 and not in_class:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
        i += 1
    parts.append("".join(current))
    return parts


_META = set("()[]{}.*+?|^$")
_MIN_TRIGGER = 3


def _literal_prefix(alternative: str) -> str:
    """The literal text every match of `alternative` starts with (escaped punctuation counts as literal)."""
    out: list[str] = []
    i = 0
    while i < len(alternative):
        char = alternative[i]
        if char == "\\" and i + 1 < len(alternative) and not alternative[i + 1].isalnum():
            char, width = alternative[i + 1], 2
        elif char in _META or char == "\\":
            break
        else:
            width = 1
        if alternative[i + width : i + width + 1] in ("?", "*", "{"):
            break  # an optional last character is not part of every match
        out.append(char)
        i += width
    return "".join(out)


def _triggers(alternatives: list[str]) -> tuple[str, ...] | None:
    """Substrings one of which every match contains, or None when some alternative has none usable."""
    found: list[str] = []
    for alternative in alternatives:
        group = re.fullmatch(r"\(\?:([\w |-]+)\)(.*)", alternative)
        heads = group.group(1).split("|") if group else [_literal_prefix(alternative)]
        if group and group.group(2)[:1] in ("?", "*"):
            return None
        if any(len(head) < _MIN_TRIGGER for head in heads):
            return None
        found.extend(heads)
    return tuple(sorted(set(found)))


@dataclass(frozen=True)
class _Text:
    """A text to match, with what the families' prefilter reads of it (`_Family`), computed once per text."""

    text: str
    words: tuple[str, ...]  # its `\\w+` runs
    word_starts: frozenset[str]  # the first `_WORD_START` characters of each word

    @classmethod
    def of(cls, text: str) -> _Text:
        words = tuple(_WORD.findall(text))
        return cls(text, words, frozenset({word[:_WORD_START] for word in words}))


_WORD = re.compile(r"\w+")
_WORD_START = 3


class _Family:
    """One signal's pattern, searched only when the text contains one of its trigger substrings: `in` on a
    few KB costs well under a microsecond, a regex of fifty alternatives some tens of microseconds.

    Most triggers follow `\\b` and start with a word character, so they can only occur where a word of the
    text starts with the trigger's own first word: those are looked up by that word's start in the text's
    set of word starts (one set intersection), and only the few whose start is there are searched with `in`.
    Both are necessary conditions of a match, so the regex alone still decides."""

    def __init__(self, pattern: str) -> None:
        parts = _top_level(pattern)
        bounded = [part[2:] for part in parts if part.startswith("\\b")]
        others = [part for part in parts if not part.startswith("\\b")]
        # One shared leading word boundary: Python's engine skips an alternative that starts with a literal
        # by its first character, but tries one that starts with `\\b` in full at every position.
        self.pattern = re.compile("|".join([f"\\b(?:{'|'.join(bounded)})", *others]))
        self.triggers = _triggers(bounded + others)
        self.by_word_start: dict[str, list[str]] = {}
        self.anywhere = list(_triggers(others) or ())
        for trigger in _triggers(bounded) or ():
            first_word = _WORD.match(trigger)
            if first_word is None:
                self.anywhere.append(trigger)
            else:
                start = first_word.group(0)[:_WORD_START]
                self.by_word_start.setdefault(start, []).append(trigger)

    def search(self, text: _Text | str) -> bool:
        """`text` as a `_Text` when several families read it (its word starts are then read once), else as
        a plain string (every trigger searched with `in`)."""
        if isinstance(text, str):
            if self.triggers is not None and not any(trigger in text for trigger in self.triggers):
                return False
            return self.pattern.search(text) is not None
        if self.triggers is not None and not self._may_match(text):
            return False
        return self.pattern.search(text.text) is not None

    def _may_match(self, text: _Text) -> bool:
        if any(trigger in text.text for trigger in self.anywhere):
            return True
        starts = self.by_word_start.keys() & text.word_starts
        return any(trigger in text.text for start in starts for trigger in self.by_word_start[start])


class _Gated:
    """A pattern whose own triggers are common words ("user", "two", "read", "is this"): searched only when
    each of its gate groups has a word in the text, so that it runs on few asks and the families' regexes
    keep their specific triggers."""

    def __init__(self, gates: tuple[tuple[str, ...], ...], pattern: str) -> None:
        self.gates = gates
        self.pattern = re.compile(pattern)

    def search(self, text: str) -> bool:
        if not all(any(word in text for word in group) for group in self.gates):
            return False
        return self.pattern.search(text) is not None


_DESIGN = _Family(
    r"\bhow (?:should|would|do|can) (?:we|i|you) (?:structure|design|architect|model|scale|shard|version)\b"
    r"|\barchitecture (?:for|of)\b|\broadmap\b|\bhigh-level plan\b|\bmigration path\b|\bcutover\b"
    r"|\bbackfill\b"
    r"|\bdual-?writes?\b|\bexpand/contract\b|\bshard\w*|\breplication\b|\bfailover\b|\bactive-active\b"
    r"|\bconsistency model\b|\beventual(?:ly)? consisten\w*|\bsagas?\b|\boutbox\b|\bcaching strategy\b"
    r"|\bcache invalidation\b|\bschema design\b|\bdata model for\b|\bapi versioning\b|\bmonolith\b"
    r"|\bmicroservices?\b|\bservice boundar\w*|\bbounded contexts?\b|\bplugin (?:system|architecture)\b"
    r"|\bextensib\w*|\bthreat model\w*|\bdisaster recovery\b|\bhigh availability\b|\bat scale\b|"
    r"\b(?:design|architect|rearchitect|re-architect)(?:ing)? "
    r"(?:the|a|an|it|our|this|per-\w+|how|for|end to end)\b"
    r"|\bdesign it\b|\b(?:phased|step-by-step|step by step|migration|rollout|incremental) plan\b"
    # "explain this Dockerfile step by step" asks for a walk-through, not a plan: only a plan counts.
    r"|\bplan (?:the|how|a|for)\b|\bstep by step plan\b|\bend to end\b|\bstrategy\b|\bphased\b"
    r"|\bmulti-?tenan\w*|\b(?:schema|database) per tenant\b|\boverall architecture\b|\bboundaries\b"
    r"|\bsplit (?:this|it|us|the \w+) into services\b|\bshould we split\b|\bmulti-?region\b"
    # Versioning of an interface is design; an S3 bucket's "versioning" is a setting.
    r"|\bzero[- ]downtime\b|\b(?:api|schema|event|message|protocol|contract) versioning\b"
    r"|\bschema evolution\b"
    r"|\btrade-?offs?\b|\bscal\w+ (?:reads?|writes?|out)\b|\bdesign multi-\w+|\boffline(?:-first| sync)\b"
    r"|\barchitecture\?|\bsplit responsibilit\w*|\bwhat breaks first\b"
    r"|\bevent-driven or\b|\bor request/response\b|\bcqrs\b|\bevent sourcing\b"
)
_SECURITY = _Family(
    r"\bauthori[sz]ation bypass\b|\bbypass\w* (?:auth\w*|the check|permissions?)\b|\bsafe to (?:expose|run|"
    r"deploy|use|publish)\b|\bsecure enough\b|\bhardening review\b|\btiming attack\b|\bconstant-time\b"
    r"|\breplay\w*|\bsignature verification\b|\bverif\w+ (?:the )?(?:jwt|token|signature|webhook)\w*"
    r"|\bsaniti[sz]\w*|\buntrusted\b|\buser[- ]controlled\b|\bpath traversal\b"
    r"|\b(?:unsafe|insecure) deseriali[sz]\w*"
    r"|\b(?:shell|command|sql|ldap|template|header) injection\b|\bopen redirect\b|\brce\b|\bexposed\b"
    r"|\bpublic(?:ly)? (?:readable|accessible|exposed)\b|\bleast privilege\b|\bover-?permissive\b"
    r"|\bwildcard (?:permissions?|actions?|principals?)\b|\brow[- ]level security\b|\btenant isolation\b"
    r"|\bleak\w* (?:data|tokens?|pii|secrets?|across tenants)\b|\biv reuse\b|\becb mode\b|\bcsprng\b"
    r"|\bsecure\?|\bsafe\?|\bholes?\?|"
    r"\bsecurity (?:review|audit|holes?|issues?|risks?|problems?)\b|\breview\b[^.?!\n]{0,40}\bsecurity\b"
    r"|\babuse[ds]?\b|\bexploit\w*|\battackers?\b|\bvulnerab\w*|\binsecure\b|\bany holes\b"
    r"|\binjection\b(?<!dependency injection)(?<!constructor injection)"  # DI is a structure, not a threat
    r"|\bssrf\b|\bxss\b|\bcsrf\b|\boverflows?\b|\bprivilege\w*|\bleak risks?\b"
    r"|\bsecrets? leak\w*|\bsupply chain\b|\btamper\w*|\bforge\w*|\bspoof\w*|\bwhere trust\b"
    r"|\bauthenticate each other\b"
    # Whether it is safe, not a cookie's `Secure` flag ("set the session cookie to HttpOnly and Secure").
    r"|\b(?:cors|cookie|jwt|iam|rbac|tls|oauth|csp|permission)\w*\b[^.?!\n]{0,40}\b(?:safe|secure|holes?)\b"
    r"(?<!and secure)(?<!, secure)(?! flag| attribute)"
    r"|\breview (?:the )?(?:cors|cookie|jwt|iam|rbac|auth\w*|permission\w*|policy|policies)\b"
    r"|\bpermission checks\b|\b(?:can a user|can users|can someone|can anyone) (?:read|see|access|bypass)\b"
    r"|\b(?:get around|get past) (?:this|the|our)\b"
    r"|\b(?:more access|more permission|more permissions|more rights) than\b"
    r"|\b(?:more than it|more than they|more than he|more than she) needs?\b|\b(?:public|open) internet\b"
    r"|\bon the internet\b|\bsketchy\b|\bdodgy\b"
    r"|\b(?:what could|what can|what would) (?:someone|anyone|an attacker|a user) do with\b"
    # Looking at a login handler is a review only when it looks for holes: "look at the payment handler and
    # rename amt" is an edit in a sensitive place.
    r"|\b(?:look at|look over|go over|check) (?:our|the|this|my) (?:login|auth\w*|sign-?up|upload|password"
    r"|session|payment)\w* (?:handler|flow|code|endpoint|logic|middleware|form)s? (?:for (?:holes|issues"
    r"|problems|vulnerabilit\w*|weakness\w*|security\w*)|before (?:we |i |you |it )?(?:ship|deploy|release"
    r"|merge|launch|go live)\w*|(?:and )?(?:see |tell me )?(?:if|whether) it(?:'s| is)"
    r" (?:safe|secure))\b"
    r"|\b(?:token|tokens|password|passwords|reset|crypto|auth|authn|authz|authentication|authorisation"
    r"|authorization|login|session|sessions|signing|hmac)\b[^.?!\n]{0,30}"
    r"\b(?:looks?|is|are) (?:ok|okay|right|correct|sound)\b|\b(?:is this|is the|is our) crypto\b"
    # Round 4: a threat described without review words. Whether something can be defeated ...
    # Spelled out ("can it", "could someone" …) so that the family's trigger substrings stay specific.
    r"|\b(?:can it|can this|can that|can they|can these|can someone|can anyone|can a user"
    r"|can users|can an|could it|could this|could that|could they|could these"
    r"|could someone|could anyone|could a user|could users|could an|would it"
    r"|would this|would that|would they|would these|would someone|would anyone"
    r"|would a user|would users|would an"
    r")(?: \w+)? (?:still )?(?:be )?"
    r"(?:bypass|forge|forging|guess|replay|inject|leak|escalat|brute|enumerat|impersonat|spoof"
    r"|tamper|hijack|smuggl|read other|see other|access other)\w*"
    r"|\bbypass(?:ed|able)\b|\bguessable\b|\bpredictable (?:tokens?|ids?|session\w*|reset|urls?|links?)\b"
    r"|\bbrute[- ]?forc\w*|\bimpersonat\w*|\bhijack\w*"
    r"|\bescalat\w* (?:to (?:\w+ )?(?:admin|root|superuser)|privileges?|roles?)\b|\binjectable\b"
    # Memory-safety shapes in plain words, and grants wider than they need ("is this IAM policy too broad").
    # Past the end of a buffer or an array, not of a file ("read past the end of the file" is I/O).
    r"|\b(?:read|reads|write|writes|reading|writing) (?:past|beyond) (?:the )?(?:end of (?:the |a |an |its |"
    r"this )?(?:buffer|array|slice|allocation|vector)|buffer|bounds|array)\b"
    r"|\bout of bounds\b|\bout-of-bounds\b|\bbuffer over\w*"
    # A grant, not a PR's scope or a class's role ("the scope of this PR is too broad").
    r"|\b(?:policy|policies|permission|permissions|grant|grants|iam)\b[^.?!\n]{0,30}"
    r"\btoo (?:broad|wide|permissive|open)\b"
    r"|\bbecome (?:an? )?(?:admin|root|superuser)\b"
    # ... how passwords, secrets and tokens are handled ...
    r"|\b(?:password|passwords|secret|secrets|token|tokens|api key|api keys|credential|credentials) "
    r"(?:hash\w*|storage|stored|handling|generation|generated|comparison|compared|rotation|in (?:the )?"
    r"(?:logs?|url|query string|local ?storage|repo))\b"
    r"|\b(?:hash|hashes|hashing|hashed|store|stores|storing|stored|generate|generating|compare|comparing)"
    r" (?:the |our |user )?(?:passwords?|secrets?|api keys?)\b"
    # ... and the shapes of SSRF, path traversal, injection and unsafe deserialisation in plain words.
    r"|\binternal (?:services?|network|endpoints?|hosts?|ips?|addresses|metadata)\b|\bmetadata endpoint\b"
    r"|\barbitrary (?:urls?|hosts?|files?|paths?|commands?|code|sql)\b|\b(?:any url|any host)\b"
    r"|\buser[- ](?:supplied|provided|given) (?:urls?|paths?|file ?names?|input|html|templates?|queries)\b"
    r"|\boutside (?:the |our )?(?:upload|uploads|base|root|web ?root|allowed|sandbox)\w*\b|\bdot-dot\b"
    r"|\b(?:built|build|building|concatenated|concatenating|glued)"
    r" (?:with|by|from|using) (?:string|f-string|user)"
    r"|\bunpickl\w*|\bpickle\.?loads?\b|\byaml\.load\b|\bobjectinputstream\b|\bbinaryformatter\b"
    r"|\bwhat the client sends\b|\bfrom the client\b[^.?!\n]{0,30}\b(?:trust|as is|directly)\b"
    r"|\bactually (?:isolat|block|restrict|protect|prevent)\w*|\bnetwork polic\w+"
    # Round 6: threats in the words people use for them (fresh4's misses, by kind); the alternatives that
    # start with common words ("user", "store", "sign") are `_SECURITY_PLAIN` below. A review by its object
    # or its angle, no "security" noun needed; the object is a flow or its code, not its copy ("review the
    # login page copy for typos").
    r"|\breview (?:the |our |this |my )?(?:login|password|session|oauth|sign-?up|upload|token|reset|sso"
    r"|saml|api key)\w*(?: [+&/] \w+| and \w+)?(?: \w+)? (?:flows?|handling|handlers?|code|logic|endpoints?"
    r"|middlewares?|implementation|setup|storage|management|callbacks?|checks?)\b|\bsecurity (?:standpoint"
    r"|perspective|point of view|pov|angle|wise)\b"
    r"|\bsecurity-wise\b|\bfrom a security\b|\brls\b|\boauth (?:callback|state|redirect)\w*|\bstate param\w*"
    r"|\b(?:js interface|js bridge|javascript interface|javascript bridge)\b|\baddjavascriptinterface\b"
)
# Round 4: how big a design or plan is. A bounded job (one table, one endpoint's shape, the folders of a small
# app, a version upgrade, a branch rename) is a small choice or a documented procedure; a design across
# services, live data or a long lifetime is not. These only qualify `design`, they never fire on their own.
_LARGE_SCOPE = _Family(
    r"\bzero[- ]downtime\b|\bno downtime\b|\bdistributed\b|\bmulti-?(?:service|region|tenant)\w*"
    r"|\b(?:several|multiple|many|all (?:our|the)|across|between) (?:services|teams|regions|datacenters"
    r"|clusters|microservices|systems|databases|apps)\b"
    r"|\blong-?(?:lived|running|term)\b|\bfor (?:years|the next)\b"
    r"|\blive (?:data|traffic|system)\b|\bmillions?\b|\bbillions?\b|\bat scale\b|\bin production\b"
    r"|\bwhole (?:system|platform|company|org)\b|\bend to end\b|\bevent-driven\b|\bconsisten\w*"
    r"|\bfailover\b|\breplicat\w*|\bshard\w*|\boffline\b|\bsync\w*|\bconflicts?\b"
    r"|\bmigrat\w+ (?:the |our )?data\b|\bacross (?:our|all|every|multiple|several|many)\b"
    r"|\b\d[\d.,]*\s?(?:k|m|million|billion)\b"  # "2k writes/s", "1M followers"
)
_SMALL_SCOPE = _Family(
    # Round 5: an adjective counts only on the job's noun: "short one:" or "a single event" say nothing of
    # the job's size. A job's noun may carry one qualifier ("the db table", "a settings page").
    r"\b(?:small|simple|tiny|basic|minimal|little|lightweight|single-page) (?:\w+ )?(?:app|cli|tool|script"
    r"|service|api|table|page|form|project|site|website|feature|bot|endpoint|component|schema|crud)\b"
    # Round 5 review: a small noun counts only as the design's own object ("design the db table"), not
    # anywhere in the ask ("the retry strategy for the payment request", "the permission model for this app").
    r"|\b(?:design|designing|plan|planning|model|modelling|modeling|structure|structuring|lay out|sketch)"
    r" (?:a|one|the|this|my) (?:\w+ )?(?:table|endpoints?|column|field|form|page|script|cli|function|class"
    r"|component|folder|enum|struct|type|config|json|response|request|index|route)\b"
    r"|\bthe folders?\b|\bfolder layout\b"
    r"|\b(?:upgrad|bump|updat)\w* (?:\w+ )?(?:from |to )?v?\d|\bupgrad\w* (?:\w+ ){0,3}(?:to|from)\b"
    r"|\brename of\b|\bjson shape\b|\bshape (?:of|for)\b|\bnaming\b"
    r"|\bfor (?:a|my|this) (?:side|hobby|toy|pet)\b"
)
_CONCURRENCY = _Family(
    r"\bthread[- ]?safe\w*"
    r"|\bconcurrent(?<!\d concurrent)(?<!max concurrent)(?<!limit concurrent)(?<!limit the concurrent)(?:ly)?"
    r" (?:modif\w+|access\w*|writes?|requests?|updates?|calls?)\b"
    r"|\block ordering\b|\blivelock\w*|\bstarv\w+|\batomicity\b|\batomically\b|\bhappens-before\b"
    r"|\breorder\w*|\bmemory barrier\w*|\baba problem\b|\bwait-free\b|\bout of order\b"
    # Duplicate rows a query finds ("sql to get duplicate emails") are data, not a delivery guarantee.
    r"|\bduplicate(?<!get duplicate)(?<!find duplicate)(?<!list duplicate)(?<!remove duplicate)"
    r"(?<!delete duplicate)(?<!count duplicate)(?:d)?"
    r" (?:messages?|events?|charges?|jobs?|emails?|payments?)\b"
    r"|\bredeliver\w*"
    r"|\bisolation level\b|\bserializable\b|\bphantom reads?\b|\bselect \.\.\. for update\b|\bfor update\b"
    r"|\boptimistic lock\w*|\bgoroutines? (?:count )?(?:keeps |is )?(?:leak|hang|stuck|block|pile|grow"
    r"|climb)\w*"
    r"|\bhangs? (?:forever|sometimes)\b"
    r"|\btoctou\b|\bcheck-then-act\b|\bsignal handler\b|\basync-signal-safe\b|\bmemory corruption\b|"
    r"\brac(?:es?|y|e condition)\b(?! (?:test|field|column|detector|flag|key|attribute|property|id|enum))"
    r"|\bdeadlock\w*|\bdouble-checked\b"
    r"|\bmemory order\w*|\bmemory_order\w*|\block-free\b|\bexactly-once\b|\bat-least-once\b|\btwice\b|"
    r"\binterleav\w*|\blost updates?\b|\bspurious\b"
    r"|\bfalse sharing\b|\bdistributed lock\b|\bmpmc\b|\bspsc\b|\bdata race\b|\blinearizab\w*"
    r"|\bboth pass\b|\bgoroutine leak\w*|\bwith -o2\b|\bonly with -o\d\b|\bundefined behaviou?r\b"
    r"|\bvs -o\d|\bversus -o\d|\band -o\d|\bonly in release\b|\bin release builds?\b"
    r"|\bmemory model\b|\bcompare-and-swap\b|\bcas loop\b|\bthread-safe\b"
    r"|\brelaxed\b|\bacquire/release\b|\bacquire and release\b|\bleak\w* goroutines\b"
    r"|\bconcurrent readers\b|\bsend on closed channel\b"
    # Round 6: hazards described without the keyword (fresh4's misses, by kind); the alternatives that start
    # with common words ("two", "read", "check") are `_CONCURRENCY_PLAIN` below.
    r"|\bfreed (?:string|memory|pointer|object|buffer)\b|\bseqlock\b"
    r"|\bfence (?:placement|ordering)\b|\bmemory fences?\b|\bfencing tokens?\b"
    r"|\bdouble[- ]count\w*|\bread-modify-write\b|\boverwrit\w* each other\b|\bclobber\w*"
)
_ALGORITHM = _Family(
    r"\bfaster than o\(|\bnp-(?:hard|complete)\b|\bheuristic\b|\bshortest path\b|\btopological\b"
    r"|\bcorrectness\b|\bloop invariant\b|\bterminat(?:es|ion)\b|\bworst[- ]case\b|\bamortised\b"
    r"|\bcache-friendly\b|\bvectori[sz]\w*|\bfloating[- ]point (?:error|precision|drift)\b|\bnumerical\w*|"
    r"\bo\(n(?: log n|\^?2|²)?\)|\bcomplexity\b|\bexplicit stack\b|\biterative\b|\bbit-identical\b"
    r"|\binvariant\w*|\bamortized\b|\bunder (?:these )?constraints\b|\bprove\b|\bproof\b"
    r"|\bdynamic programming\b|\bsimd\b|\bnumerically stable\b"
)
_WHOLE_CONTEXT = _Family(
    r"\bacross (?:files|modules|services|the codebase|the repo|the project)\b|\bend-to-end flow\b"
    r"|\btrace (?:the|how|where)\b|\bhow (?:do|does) (?:these|the) \w+ (?:fit|interact|work together|talk)\b"
    r"|\bdata flow\b|\bcall graph\b|\bsomewhere in (?:here|these|this)\b|\bmismatch between\b|"
    r"\bacross (?:these|the|all|both|multiple|several|our|every)\b|\bthroughout\b|\boverall\b"
    r"|\bthis codebase\b|\bwhole (?:file|codebase|module|app|thing)\b|\bthese (?:modules|services|handlers)\b"
    r"|\bbetween these\b|\bwhere (?:is|are|does)\b[^.?!\n]{0,40}\b(?:actually|really)\b"
)
_STRUCTURAL = _Family(
    r"\bextract (?:a|an) (?:service|layer|module|interface|package)\b|\bdecoupl\w*|\bmodulari[sz]\w*"
    r"|\bhexagonal\b|\bclean architecture\b|\brepository pattern\b|\bevent bus\b|\bstrangler\b"
    r"|\bsplit (?:the|this) (?:monolith|package|crate|repo)\b|\bmigrate (?:the )?(?:codebase|app|project)\b|"
    r"\bgod class\b|\bdependency injection\b|\brestructur\w*|\bintroduce (?:\w+ )?(?:injection|layer|"
    r"interface|cqrs|module)\w*|\bcomposition\b|\binheritance hierarchy\b|\binto (?:reusable )?modules\b"
    r"|\bdomain module\b|\binto one middleware\b|\binto (?:cohesive )?(?:classes|slices)\b|\bstate machine\b"
    r"|\bport (?:this|the|it) (?:module|service|library|crate|package)\b|\bfrom \w+ to (?:rust|go|c\+\+)\b"
    r"|\bconvert (?:this|the) \w+ app\b|\bto \w+ async\b|\binto \w+ async\b|\bremove the global\b"
    r"|\b(?:remove|replace|get rid of) the (?:global )?singleton\b"
    r"|\bpull (?:the )?\w+ logic out\b|\bsplit (?:this|the) \w+ (?:class|module|service)\b"
    r"|\binto a (?:repository|service|data access|domain|persistence) layer\b|\breentran\w*"
    r"|\bno more globals\b"
)
_CARE = _Family(
    r"\bwithout (?:any )?(?:behaviou?r|functional) change\b|\bpreserv\w*|\bbackwards?-compatible\b"
    r"|\bno downtime\b|\bmust not (?:break|change|lose)\b|\bexisting (?:clients|callers|data)\b"
    r"|\b(?:bit|byte)-for-(?:bit|byte)\b|\bround-trip\w*|\bsame output\b|\brollback\b|"
    r"\bcareful\w*|\bmust (?:stay|be|keep|remain|not)\b|\bwithout (?:chang|recreat|break|downtime|los)\w*"
    r"|\bkeep (?:the|each|its|their|all) \w+(?:'s)? (?:behaviou?r|api|semantics|order|the same)\b"
    r"|\bsame behaviou?r\b|\bedge cases?\b|\bsemantics\b|\bidentical\b|\bexactly the same\b"
    r"|\bidempoten\w*|\bhalfway\b|\bin what order\b|\bbackward\w* compat\w*|\bno \w+ is missed\b"
    r"|\bwhat changes\b|\bdrifted\b|\bdeterministic\b|\breproducible\b|\bcorrect with\b"
)
_SYSTEMIC = _Family(
    r"\bmemory leak\w*|\bleaks memory\b|\bgrows (?:over time|until)\b|\b(?:keeps|kept) growing\b|\bp99\b"
    r"|\blatency spikes?\b"
    r"|\btail latency\b|\bthroughput (?:drops|collapses)\b|\bonly in prod\w*|\bin prod only\b"
    r"|\bcan'?t reproduce\b|\bnon-?deterministic\w*|\bheisenbug\b|\bdegrad\w*|\bregress\w* after\b"
    r"|\bcpu (?:spikes?|at 100)\b|\bthrash\w*|\bbut only (?:when|after|under|once|on|in)\b"
    r"|\bsometimes\b|\boccasionally\b|\bintermittent\w*|\bonce a (?:week|day|month)\b"
    r"|\brandomly\b|\bflaky\b|\bfalls? over\b|\bscales? badly\b|\bunder load\b"
    r"|\bprofiler\b|\bin gc\b|\bhot path\b|\boomkill\w*|\bexplain analyze\b"
    r"|\bevent loop (?:is |gets |was )?(?:blocked|lag\w*|stall\w*|starv\w*)"
    r"|\bsilently\b|\bwrong (?:totals?|results?|numbers?) (?:for|in|on) some\b|\bfor good\b"
)
# A symptom that appears only then ("fails, but only after the rotation") is systemic; "only when" as a
# condition asked for ("how do i run it only when src changed") is not. Searched only when the ask has
# "only ": its symptom words are common substrings and would run it on most asks.
_SYMPTOM_ONLY = _Gated(
    (("only ",),),
    r"\b(?:fail|crash|break|happen|occur|hang|error|slow|leak|spike|stall|wrong|flak|drop|lost|lose|miss"
    r"|disappear|corrupt|die|freez|timeout|time out|killed|panic)\w*\b[^.?!\n]{0,40}"
    r"\bonly (?:when|after|under|once|on shutdown|on startup)\b",
)
_MECHANICAL = _Family(
    r"\brename\w*|\bdocstrings?\b|\bjsdoc\b|\bgodoc\b|\bjavadoc\b|\btypos?\b|\bcomments?\b|\bf-strings?\b"
    r"|\blet/const\b|\bprintln\b|\breadme\b|\bchangelog\b|\btype hints?\b|\bnamed constants\b"
    r"|\bearly returns\b|\boptional chaining\b|\ba test case\b|\bsnapshot test\b|\bhelp target\b"
    r"|\bdocument\w*|\bformat(?:ting)?\b|\bsort (?:the )?imports\b|\bto yaml\b|\bto json\b"
    r"|\breplace (?:every|all|the) \w+ (?:with|for|by)\b|\bswap every\b|\beverywhere\b|\bsummar\w+"
    r"|\b(?:add a|add an|use a|use an|put a) (?:mutex|lock|semaphore|timeout|worker thread|thread pool)\b"
    r"|\bgive it a timeout\b|\bmermaid\b|\bplantuml\b|\bas a diagram\b"
)
_ERROR_PASTED = _Family(
    r"(?:error|exception):|\berr!|\btraceback\b|\bundefined reference\b|\bcannot find\b|\[emerg\]"
    r"|\bno module named\b|\bassert \w+ ==|\bpanic:|\bsegmentation fault\b|\bexit status\b"
)


_ACTORS = ("user", "customer", "client", "player", "tenant", "caller", "visitor", "anyone")
# Round 6: threats in plain words whose first word is common (the rest of the round is in `_SECURITY`).
_SECURITY_PLAIN = (
    # Who controls an input that reaches a file, a query or a fetch: "users pass ?file=", "user can set a
    # webhook url" (not "the user can set a theme colour").
    _Gated(
        (
            _ACTORS,
            (
                "url",
                "path",
                "file",
                "param",
                "quer",
                "html",
                "templat",
                "script",
                "save",
                "image",
                "plugin",
                "regex",
                "expression",
                "xml",
                "svg",
                "archive",
                "zip",
                "?",
            ),
        ),
        r"\b(?:users?|customers?|clients?|players?|tenants?|callers?|visitors?|anyone) (?:can |may |could )?"
        r"(?:pass|passes|set|sets|send|sends|supply|supplies|provide|provides|control|controls|choose|chooses"
        r"|enter|enters|upload|uploads|share|shares) (?:a |an |the |their |any |own |in )?(?:own )?(?:\w+ )?"
        r"(?:urls?|paths?|file ?names?|files?|\?\w+|params?|parameters?|quer(?:y|ies)|html|templates?"
        r"|scripts?"
        r"|saves?|images?|plugins?|regex\w*|expressions?|xml|svg|archives?|zips?)\b",
    ),
    # "takes sort params from the url".
    _Gated(
        (
            ("param", "input", "value", "field", "ids"),
            ("url", "query", "request", "client", "form", "header"),
        ),
        r"\b(?:params?|parameters?|input|values?|fields?|ids) (?:straight |directly )?(?:from|in) the (?:url"
        r"|query ?string|request|client|form|headers?)\b",
    ),
    # Code or images a customer runs on our side ("a customer-run plugin: they can deploy their own image").
    _Gated(
        (("-run", "-supplied", "-provided", "-written", "-uploaded", "-controlled", "their own"),),
        r"\b(?:customer|user|tenant|third-party|partner)-(?:run|supplied|provided|written|uploaded|controlled)\b"
        r"|\b(?:deploy|run|upload) their own (?:code|images?|scripts?|plugins?|containers?)\b",
    ),
    # Authorisation across tenants: named by letter with an access between ("could a nurse at clinic A pull
    # up a clinic B patient"; not "rename the customer a and customer b fixtures"), or "another tenant's".
    _Gated(
        ((" b ", " b?", " b.", " b,", "other", "someone else"),),
        r"\b(?:tenant|clinic|customer|org|team|company|account|school|store|user|hospital) a\b[^.?!\n]{0,30}"
        r"\b(?:see|pull up|look up|read|view|access|open|edit|change|delete|get|fetch|query|list)\b"
        r"[^.?!\n]{0,30}"
        r"\b(?:tenant|clinic|customer|org|team|company|account|school|store|user|hospital) b\b"
        r"|\b(?:pull up|look up|see|read|view|open|edit|change|delete) (?:another|other|someone else'?s)"
        r" (?:tenant|clinic|customer|org|team|company|account|user|patient)\w*",
    ),
    # Signed links ("we sign download links with this hmac helper"; not "a sign up link").
    _Gated(
        (("sign",), ("link", "url")),
        r"\bsigned (?:\w+ )?(?:links?|urls?)\b"
        r"|\bsign(?:s|ing)? (?:the |our |these |download |upload |share )?"
        r"(?:links?|urls?)\b",
    ),
    # Secrets kept in a client ("we store the refresh token in shared prefs").
    _Gated(
        (
            ("token", "secret", "key", "password", "credential"),
            (
                "pref",
                "storage",
                "userdefaults",
                "plain",
                "url",
                "client",
                "browser",
                "bundle",
                "apk",
                "frontend",
                "webview",
            ),
        ),
        r"\b(?:store|stores|storing|stored|keep|keeps|kept|save|saves|saved|put|puts) (?:the |our |a |an )?"
        r"(?:refresh |access |api |auth |session |private )?"
        r"(?:tokens?|secrets?|keys?|passwords?|credentials?)"
        r" in (?:the )?(?:shared ?prefs|sharedpreferences|local ?storage|session ?storage|userdefaults"
        r"|plain ?text|the url|client|browser|app bundle|apk|frontend|webview)\b",
    ),
    # Code or updates fetched over plain http; uploads served from the app's own origin.
    _Gated(
        (("over http", "over plain http", "same domain", "same origin"),),
        r"\b(?:download|downloads|downloading|fetch|fetches|pull|pulls|update|updates)\b[^.?!\n]{0,30}"
        r"\bover (?:plain )?http\b(?!s)"
        r"|\bserve[sd]? (?:it |them |uploads |the files )?from the same (?:domain|origin)\b",
    ),
)
# Round 6: concurrency hazards in plain words whose first word is common (the rest is in `_CONCURRENCY`).
_CONCURRENCY_PLAIN = (
    # Two actors at once on one thing: "two users get the same seat", "two pods both think they're the
    # leader" (not "merge two users with the same email").
    _Gated(
        (("two ", "both ", "multiple ", "several "),),
        r"\b(?:two|both|multiple|several) (?:\w+ )?(?:users|customers|buyers|sessions|devices|requests"
        r"|workers"
        r"|pods|threads|processes|clients|instances|jobs|players|people|nodes|consumers|replicas|tabs"
        r"|transactions|callers|tasks|servers|webhooks|handlers|leaders)"
        r" (?:sometimes |both |can |could |might |may |occasionally |still )*"
        r"(?:get|gets|pick|picks|grab|grabs|claim|claims|think|thinks|write|writes|book|books|buy|buys|end up"
        r"|arrive|arrives|hit|hits|take|takes|charge|charges|increment|increments|win|wins|succeed|succeeds)\b",
    ),
    # Events that land together ("refund and chargeback webhooks can arrive together").
    _Gated(
        (("same time", "same moment", "same instant", "same millisecond", "together", "simultaneous"),),
        r"\b(?:arrive|arrives|arriving|hit|hits|come in|comes in|happen|happens|fire|fires|click|clicks|trade"
        r"|trades|trading|submit|submits|land|lands)\b(?: \w+)? (?:at (?:the )?(?:exact |very )?same"
        r" (?:time|moment|instant|millisecond)|together|simultaneously)\b",
    ),
    # Readers while a writer changes the thing ("requests keep reading it while reloading").
    _Gated(
        ((" while ",),),
        r"\b(?:read|reads|reading|use|uses|using|access|accesses|accessing) (?:it |them |the \w+ )?while"
        r" (?:it(?:'s| is) )?(?:\w+ )?(?:reload|rebuild|writ|updat|modif|mutat|chang|rotat|resiz|swap|refresh"
        r"|delet|free)\w*",
    ),
    # A buffer or flag shared with an interrupt or another thread (not "share this map between tasks").
    _Gated(
        (("share",), ("isr", "interrupt", "irq", "thread", "core", "goroutine", "handler")),
        r"\b(?:isr|interrupts?|irqs?|threads|cores|goroutines|handlers)\b[^.?!\n]{0,40}\bshare"
        r" (?:these |this |the |a |an |one )?(?:\w+ )?(?:buffers?|flags?|state|memory|variables?|counters?"
        r"|queues?|maps?|structs?|arrays?|pointers?|globals?|data)\b",
    ),
    # A freed value still read, a split brain, an ack before the write, a hang that comes and goes, a check
    # then an act.
    _Gated(
        (
            (
                "after free",
                "after-free",
                "brain",
                "before",
                "sometimes",
                "occasionally",
                "randomly",
                "intermittently",
                " then ",
            ),
        ),
        r"\buse[- ]after[- ]free\b|\bsplit[- ]brain\b"
        r"|\back\w*(?: goes out| is sent)? before (?:the )?(?:db |database )?(?:write|commit|insert)\w*"
        r"|\b(?:freez|hang|stuck)\w* (?:up )?(?:sometimes|occasionally|randomly|intermittently)\b"
        r"|\bcheck(?:s|ed)? (?:if|whether|that)\b[^.?!\n]{0,40}\bthen (?:insert|update|writ|creat|book|charg"
        r"|reserv|decrement|delet)\w*",
    ),
)
# "Is this (endpoint) secure?": since round 5's review a thing may be named between. Kept out of the
# security family, searched only when the ask says "safe" or "secure": inside, its "is this" and "is it"
# triggers would run the family's regex on most asks.
_SAFE_QUESTION = _Gated(
    (("safe", "secure"),),
    r"\b(?:is this|is it|is that|are these|are they|are those)(?: \w+){0,2} (?:safe|secure)\b"
    # ... but not a kind of safety without an adversary ("is it type safe").
    r"(?<!thread safe)(?<!type safe)(?<!null safe)(?<!exception safe)(?<!async safe)",
)
# The ask's terms for the learned wording weights (escalation.py): lower-case words and adjacent pairs.
_TERM = re.compile(r"[a-z][a-z0-9+#'-]*")
# A pasted line of code or a log line is material, not the ask.
_CODE_LINE = re.compile(r"^(?:\s{2,}|\t).*$|^.*[;{}=]\s*$|^\s*(?:at |File \"|#|//|\$ |>>> ).*$", re.M)


@dataclass(frozen=True)
class AskSignals:
    """What the ask asks for (each 0/1), read from the ask's words; see `read_ask`."""

    design: bool = False  # a multi-step design, architecture or migration plan
    bounded_design: bool = False  # a design or plan of a small, bounded job (one table, an upgrade)
    security: bool = False  # whether code or configuration holds against an adversary
    concurrency: bool = False  # races, orderings, delivery guarantees, UB under optimisation
    algorithm: bool = False  # complexity, invariants, a rewrite under exact constraints
    whole_context: bool = False  # relating parts of the attachment ("across these", "overall")
    structural: bool = False  # a cross-cutting structural change (DI, split a god class, a port)
    care: bool = False  # behaviour or semantics that must be kept ("same behaviour", "idempotency")
    systemic: bool = False  # a symptom with no pointer to its place ("only after", "sometimes", GC)
    mechanical: bool = False  # a local or mechanical edit (rename, docstring, typo, reformat)
    error_pasted: bool = False  # a pasted error message, which usually points at its line
    ask_words: int = 0
    terms: frozenset[str] = frozenset()  # the ask's words and word pairs (blanked names excluded)
    text: str = ""  # the ask as matched (`ask_text`): what the escalation model's embedding reads


def ask_part(prompt: str) -> str:
    """The request itself: its start and its end, without pasted material between."""
    if len(prompt) > ASK_HEAD_CHARS + ASK_TAIL_CHARS:
        return prompt[:ASK_HEAD_CHARS] + "\n" + prompt[-ASK_TAIL_CHARS:]
    return prompt


def ask_text(part: str) -> str:
    """The ask with pasted code lines dropped and names, file names, settings and log levels blanked,
    lower-cased (what is matched)."""
    text = _CODE_LINE.sub("", part)
    text = _QUOTED.sub(" name ", text)
    text = _FILE_NAME.sub(" file ", text)
    text = text.lower()
    text = _LOG_LEVEL.sub(" log level ", text)
    return _SETTING.sub(" setting ", text) if ":" in text else text


def read_ask(prompt: str) -> AskSignals:
    part = ask_part(prompt)
    text = ask_text(part)
    matched = _Text.of(text)
    conversation_signals = _conversation_signals(text, matched)
    return replace(
        conversation_signals,
        bounded_design=conversation_signals.design
        and _SMALL_SCOPE.search(matched)
        and not _LARGE_SCOPE.search(matched),
        whole_context=_WHOLE_CONTEXT.search(matched),
        structural=_STRUCTURAL.search(matched),
        care=_CARE.search(matched),
        systemic=_SYSTEMIC.search(matched) or _SYMPTOM_ONLY.search(text),
        error_pasted=_ERROR_PASTED.search(part.lower()),
        terms=ask_terms(text),
        text=text,
    )


def read_question_ask(prompt: str) -> AskSignals:
    """Only the signals the conversation's parts and rules read (hard reasoning, a mechanical edit) and the
    ask's length, the rest left unset: for a self-contained question the question model's part replaces the
    ask's own parts of the logit (`questions.question_contributions`), so reading them is wasted."""
    text = ask_text(ask_part(prompt))
    return _conversation_signals(text, _Text.of(text))


def _conversation_signals(text: str, matched: _Text) -> AskSignals:
    """The signals `escalation.conversation_features` and `conversation_rule` read, and the word count."""
    flagless = _HYPHEN_FLAG.sub(lambda m: m.group(0) if m.group(0).startswith("-o") else " flag ", text)
    matched_flagless = matched if flagless == text else _Text.of(flagless)
    return AskSignals(
        design=_DESIGN.search(matched),
        security=_SECURITY.search(matched)
        or any(alternative.search(text) for alternative in _SECURITY_PLAIN)
        or _SAFE_QUESTION.search(text),
        concurrency=_CONCURRENCY.search(matched_flagless)
        or any(alternative.search(flagless) for alternative in _CONCURRENCY_PLAIN),
        algorithm=_ALGORITHM.search(matched),
        mechanical=_MECHANICAL.search(matched),
        ask_words=len(matched.words),
    )


def ask_terms(text: str) -> frozenset[str]:
    """Words and adjacent word pairs of the matched ask text (`ask_text`): what the wording weights read."""
    words = _TERM.findall(text)
    return frozenset([*words, *(f"{a} {b}" for a, b in itertools.pairwise(words))])


def log_words(signals: AskSignals) -> float:
    return math.log1p(signals.ask_words)
