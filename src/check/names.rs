//! Names: every proper name of the Turkish source must reach the English, and the English must
//! not name people or places the source never mentions.
//!
//! Small models drop names, swap them and, worst, invent them: asked to translate a report of
//! Putin meeting Kim Jong Un in Pekin, one wrote of "Chinese President Xi Jinping" and "the
//! eastern city of Dalian". Two findings come out of that: [`Kind::Name`] for a source name
//! with no counterpart in the translation, [`Kind::InventedName`] for an English name that
//! traces to nothing in the source.
//!
//! Names are capitalised words that do not open a sentence, and acronyms. Turkish attaches
//! suffixes to names after an apostrophe (`Pekin'de`, `Erdoğan'ın`), which both marks a word as
//! a name (even at a sentence start) and is stripped before comparing. Titles and institution
//! words (`Cumhurbaşkanı`, `Bakanlığı`), days and months are capitalised in Turkish without
//! being names; headlines capitalise every word, so in a title-case sentence only words with
//! other evidence (a suffix, an acronym, an entry of the exonym table) count.
//!
//! Words are compared folded (case with the Turkish dotted and dotless i, diacritics:
//! `Erdoğan` = `Erdogan`, `İstanbul` = `Istanbul`), tolerating inflection (a shared stem) and
//! transliteration (one or two edits on a consonant skeleton: `Esad` = `Assad`), and through a
//! Turkish → English exonym table (`Pekin` → Beijing, `ABD` → US) generated from CLDR plus a
//! curated part by `scripts/make_exonyms.py` (`exonyms.tsv`, embedded).
//!
//! A name the translator spells its own way (`Meşhed` as `Mashhad`, `Yakup` as `Jacob`) is
//! matched on how it sounds (`Sound`): a source name missing and an English name unexplained
//! in one block that sound alike are one name, and an English name that sounds like any source
//! word, capitalised or not, traces to it (a consonant stricter). A name made only of common
//! Turkish words (`Devrim'den`, `Kutsal Kitap'a`) is taken as translated when the English has a
//! capitalised common word left over (the Revolution, the Bible).
//!
//! Institutions are the hard part: their Turkish names are capitalised and translated word by
//! word (`Varlık Fonu` → `Wealth Fund`). A source run that closes with a compound head
//! (`Fonu`, `Tepesi`) requires only its listed words; an English capitalised phrase with a
//! term word (`Fund`, `Court`, `Line`) needs no trace; and a word or two of untraced English
//! is let pass when the source has as many capitalised common nouns left untranslated-looking.
//! An English word list (SCOWL's common words, `english_words.txt`, made by
//! `scripts/make_wordlists.py`) excuses capitalised English words that are only words
//! (`Inception`, `Lounge`), except those SCOWL also lists as names (`Brown`, `Bush`, `Turkey`):
//! a translation that invents "Brown" is still caught. A Turkish word list (wordfreq's, made by
//! the same script, `turkish_words.txt`) tells a word from a name by how Turkish text suffixes
//! it: without an apostrophe (`durumda`: a word) or with one (`Mehmet'in`: a name). It is used
//! only where a word has no other sign: a lone capitalised word that the list has as a word is
//! no name (`Durum`), and a sentence may open with a name the list has, or with a word it does
//! not know that does not look Turkish (`Mizrachi`). Given names that are words (`Can`,
//! `Barış`) stay names beside a surname or with an apostrophe suffix. On clean human
//! translations that were made from English (the Turkish translator dropped or rendered a
//! name) both kinds still fire on some lines.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::OnceLock;

use super::{Finding, Kind, Lang, Span};

/// The exonym table: `turkish<TAB>english|alternatives<TAB>source` lines.
const EXONYMS_TSV: &str = include_str!("exonyms.tsv");

/// English common words, one a line after a `#` header: SCOWL's lower-case words less those it
/// also lists capitalised (`brown`/`Brown`), made by `scripts/make_wordlists.py`.
const ENGLISH_WORDS: &str = include_str!("english_words.txt");

/// Turkish word forms, folded, one a line after a `#` header: common words (`durum`, `can`),
/// then, marked with a tab and `?`, forms with no sign either way (`geçtiğimiz`, `fatma`).
/// Forms that Turkish text suffixes after an apostrophe (names: `mehmet`, `aydın`) are not
/// listed. From wordfreq's Turkish list by `scripts/make_wordlists.py`.
const TURKISH_WORDS: &str = include_str!("turkish_words.txt");

/// Turkish common-word lemmas of four letters or more, folded, one a line after a `#` header:
/// Zemberek-NLP's dictionaries less its names, by `scripts/make_wordlists.py`. For the rarer
/// words of a title (`Fotosentez`, `Ödeneği`) that [`TURKISH_WORDS`] lacks.
const TURKISH_LEMMAS: &str = include_str!("turkish_lemmas.txt");

/// Turkish titles, words of institution names, days and months: capitalised, but not names.
/// Matched as stems followed by inflection (`bakan` covers Bakan, Bakanı, Bakanlığı).
#[rustfmt::skip]
const TR_NOT_NAMES: &[&str] = &[
    // Titles and forms of address: up to "kurum", these are the titles (`tr_title`).
    "cumhurbaşkan", "başbakan", "bakan", "başkan", "yardımcı", "müdür", "vali", "kaymakam",
    "belediye", "milletvekil", "vekil", "senatör", "kral", "kraliçe", "prens", "prenses",
    "papa", "hakim", "hâkim", "savcı", "başsavcı", "sayın", "bay", "bayan", "doktor", "dr",
    "prof", "doç", "general", "orgeneral", "korgeneral", "tümgeneral", "tuğgeneral", "amiral",
    "albay", "binbaşı", "yüzbaşı", "komutan", "lider", "sözcü", "sekreter", "genel", "şef",
    "kaptan", "imam", "patrik", "şeyh", "emir", "hz", "konsolos", "başkonsolos", "büyükelçi",
    "elçi", "temsilci", "direktör", "yönetici", "teknik", "antrenör", "hoca", "üye",
    // Words of institution and place names, translated rather than kept.
    "kurum", "kurul", "örgüt", "birlik", "konsey", "komisyon", "komite", "meclis", "parti",
    "mahkeme", "üniversite", "okul", "lise", "hastane", "merkez", "enstitü", "vakıf", "vakf",
    "dernek", "derneğ", "sendika", "federasyon", "kulüp", "kulüb", "şirket", "holding",
    "banka", "borsa", "ajans", "gazete", "dergi", "televizyon", "radyo", "haber", "polis",
    "emniyet", "jandarma", "ordu", "kuvvet", "hava", "deniz", "kara", "silahlı", "ulusal",
    "milli", "devlet", "hükümet", "cumhuriyet", "halk", "demokratik", "sosyal", "işçi",
    "ekonomi", "dışişleri", "içişleri", "adalet", "sağlık", "eğitim", "maliye", "hazine",
    "enerji", "tarım", "çevre", "kültür", "turizm", "ticaret", "sanayi", "savunma", "aile",
    "gençlik", "spor", "ulaştırma", "iletişim", "bilim", "teknoloji", "yüksek", "yüce",
    "anayasa", "danıştay", "yargıtay", "sayıştay", "istihbarat", "güvenlik", "genelkurmay",
    "adli", "tıp", "ceza", "ağır", "asliye", "sulh", "idare", "il", "ilçe", "bölge",
    "mahalle", "köy", "sokak", "sokağ", "cadde", "bulvar", "meydan", "park", "köprü",
    "havalimanı", "havaalanı", "liman", "istasyon", "nehir", "nehr", "göl", "dağ", "ada",
    "körfez", "vadi", "ova", "yarımada", "kıta", "eyalet", "şehir", "kent", "başkent",
    "kasaba", "bayram", "festival", "kupa", "lig", "turnuva", "şampiyona", "ödül", "zirve",
    "konferans", "kongre", "forum", "kuzey", "güney", "doğu", "batı", "orta", "büyük",
    "küçük", "yeni", "eski", "uluslararası", "dünya", "insan", "hak", "mali", "kurban",
    "komuta", "komut", "fon", "külliye", "bütçe", "araştırma", "tepe", "oda", "kütüphane",
    "bahçe", "süt", "et", "daire", "şube", "asistan", "anayasal", "kurmay", "yapılanma",
    "oyun", "kanun", "teşkilat", "teğmen", "terör", "tahkim", "sınıf", "sınır", "kapı",
    "rapor", "reklam", "peygamber", "parlamento", "otel", "olağanüstü", "hal", "okyanus",
    "ofis", "müttefik", "müsteşar", "muhtar", "mimarlık", "tarih", "kule", "kriz",
    "kraliyet", "komiser", "karakol", "hukuk", "fakülte", "hizmet", "hekim", "uzman",
    "hakem", "huzur", "vatan", "uzay", "toplum", "vergi", "denetim", "yönetim", "yurt",
    "yükseköğretim", "özel", "harekat", "harekât", "alt", "üst", "üs", "ödenek", "cephe",
    "özgürlük", "şehit", "şeref", "dava", "ilişki", "inşaat", "işveren", "ürün", "mücadele",
    "müze", "saray", "cami", "kilise", "stadyum", "salon", "sergi", "proje", "program",
    "plan", "yasa", "tasarı", "karar", "bildiri", "sözleşme", "anlaşma", "antlaşma",
    "savaş", "operasyon", "kampanya", "grup", "takım", "ekip", "kadın", "erkek", "genç",
    "çocuk", "aile", "sanat", "edebiyat", "müzik", "film", "ödül", "yıl", "gün", "hafta",
    "sabah", "akşam", "bölüm", "madde", "fıkra", "kısım", "tören", "kabine",
    "daimi", "geçici", "bağımsız", "serbest", "birleşik", "resmi", "kamu", "bilgi", "iş",
    "sivil", "askeri", "asker", "subay", "er", "astsubay",
    "dekan", "rektör", "öğretim", "öğrenci", "başhekim", "muavin",
    "büyükşehir", "geçit", "dönem", "darbe", "basın", "birim", "acil", "bağış", "kıdemli",
    "nöbetçi", "zalim", "ev", "düzen", "destek", "yarış", "çekim", "tarama", "ödeme",
    "belde", "koy", "burun", "çarşı", "semt", "kale", "iç", "dış",
    // Function words, capitalised in the titles of works (`En İyi Film`, `Daha Garip`).
    "en", "daha", "çok", "sen", "ben",
    // Days and months.
    "pazartesi", "salı", "çarşamba", "perşembe", "cuma", "cumartesi", "pazar", "ocak",
    "şubat", "mart", "nisan", "mayıs", "haziran", "temmuz", "ağustos", "eylül", "ekim",
    "kasım", "aralık",
];

/// English words that open sentences: never names, and no translation of a capitalised word.
#[rustfmt::skip]
const EN_FUNCTION: &[&str] = &[
    "the", "a", "an", "this", "that", "these", "those", "in", "on", "at", "by", "for", "from",
    "to", "with", "and", "but", "or", "as", "after", "before", "when", "while", "if", "he",
    "she", "it", "we", "they", "you", "his", "her", "its", "our", "their", "there", "here",
    "what", "who", "why", "how", "i", "my", "of", "no", "yes", "so", "all", "some", "one",
    "not", "also", "however", "although", "though", "since", "because", "then", "now",
    "even", "only", "just", "still", "yet", "both", "each", "every", "any", "many", "most",
    "more", "such", "other", "another", "about", "against", "during", "over", "under",
    "according", "despite", "meanwhile", "thanks", "let", "please", "mr", "mrs", "ms", "dr",
    "prof", "sir", "madam", "st", "jr", "sr", "mt", "yesterday", "today", "tomorrow", "last",
    "next", "earlier", "later", "once", "finally", "first", "second", "third", "then",
];

/// English titles (`President Xi Jinping`): not names, and no sign that the words beside them
/// are a translated term.
#[rustfmt::skip]
const EN_TITLES: &[&str] = &[
    "lord", "lady", "president", "presidential", "prime", "minister", "secretary", "chairman",
    "chairwoman", "chair", "chief", "director", "governor", "mayor", "king", "queen",
    "prince", "princess", "royal", "pope", "judge", "officer", "senator", "sen", "rep",
    "representative", "gov", "lt", "col", "gen", "capt", "sgt", "detective", "inspector",
    "coach", "captain", "vice", "deputy", "assistant", "associate", "executive", "speaker",
    "leader", "spokesman", "spokeswoman", "spokesperson", "ambassador", "commander",
    "admiral", "lieutenant", "colonel", "major", "sergeant", "chancellor", "premier",
    "emperor", "sultan", "sheikh", "imam", "patriarch", "bishop", "archbishop", "cardinal",
    "father", "saint", "general", "attorney", "prosecutor", "professor", "doctor", "manager",
    "head", "undersecretary", "member", "lecturer", "researcher", "commissioner", "staff",
    "esteemed", "honorable", "excellency", "holiness", "prophet", "god", "allah", "agent",
    // Directions and other modifiers of place names (`North Korea`, `New York`).
    "north", "northern", "south", "southern", "east", "eastern", "west", "western",
    "northeast", "northwest", "southeast", "southwest", "central", "middle", "upper",
    "lower", "new", "old", "great", "grand", "greater", "little", "big",
    // Days and months.
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "january",
    "february", "march", "april", "may", "june", "july", "august", "september", "october",
    "november", "december", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept",
    "oct", "nov", "dec",
    // Common acronyms that name nothing in particular (Turkish texts use them too).
    "tv", "ceo", "cfo", "coo", "am", "pm", "ok", "dna", "gdp", "hiv", "aids", "id", "pr",
    "vip", "suv", "cctv", "gps", "usb", "pc", "lgbt", "lgbtq", "ngo", "mp", "mep", "ipo",
    "ai", "rna", "ufo", "hq", "bc", "ad", "sms", "atm", "dj", "cd", "dvd", "iq", "mri", "icu",
    "er", "phd", "mba", "cv", "vat", "gmt", "utc", "bst", "est", "cet", "mph", "kg", "km",
    "gb", "mb", "kb", "tb", "ghz", "mhz", "ram", "cpu", "gpu", "usd", "eur",
    "tl", "stk", "ohal",
];

/// English common nouns capitalised in names of institutions, places, events and works
/// (`Wealth Fund`, `Tip Line`, `Court of Appeals`): translations of Turkish capitalised
/// common nouns. Not names; a capitalised phrase with one of them is a translated term, so
/// its other words need no trace in the source either.
#[rustfmt::skip]
const EN_TERMS: &[&str] = &[
    "presidency", "ministry", "directorate", "governorship", "governorate", "government",
    "parliament", "parliamentary", "senate", "congress", "congressman", "congresswoman",
    "house", "court", "supreme", "high", "higher", "state", "department", "office", "party",
    "police", "army", "navy", "naval", "air", "force", "armed", "military", "university",
    "college", "faculty", "school", "hospital", "council", "committee", "commission",
    "union", "assembly", "national", "federal", "republic", "foreign", "affairs", "interior",
    "internal", "justice", "defence", "defense", "health", "education", "finance",
    "financial", "treasury", "economy", "economic", "trade", "commerce", "industry",
    "energy", "agriculture", "environment", "culture", "tourism", "labor", "labour",
    "transport", "transportation", "agency", "bureau", "institute", "institution", "center",
    "centre", "church", "mosque", "street", "road", "avenue", "square", "bridge", "lane",
    "boulevard", "drive", "way", "river", "lake", "sea", "ocean", "mountain", "hill",
    "valley", "island", "bay", "gulf", "city", "town", "village", "county", "province",
    "provincial", "district", "region", "regional", "neighborhood", "neighbourhood",
    "municipality", "municipal", "metropolitan", "parish", "capital", "airport", "station",
    "port", "gate", "border", "crossing", "park", "hall", "tower", "palace", "museum",
    "library", "cathedral", "complex", "base", "company", "corporation", "bank", "fund",
    "group", "inc", "ltd", "co", "corp", "association", "federation", "foundation",
    "society", "club", "league", "team", "cup", "championship", "games", "olympic",
    "olympics", "final", "award", "prize", "festival", "conference", "summit", "forum",
    "day", "week", "year", "war", "world", "global", "international", "internet", "web",
    "online", "news", "times", "post", "daily", "press", "media", "journal", "newspaper",
    "christmas", "human", "rights", "security", "intelligence", "public", "prosecution",
    "constitution", "constitutional", "law", "act", "code", "criminal", "penal", "heavy",
    "civil", "organization", "organisation", "authority", "service", "board", "movement",
    "people", "social", "democracy", "freedom", "unity", "division", "branch", "command",
    "chamber", "special", "operation", "operations", "emergency", "training", "technical",
    "research", "medical", "struggle", "terrorist", "terrorism", "terror", "counter",
    "budget", "planning", "development", "affair", "relations", "order", "peace", "martyr",
    "junior", "senior", "youth", "women", "men", "children", "family", "earth", "land",
    "summer", "winter", "spring", "autumn", "fall", "heart", "science", "sciences",
    "studies", "history", "art", "arts", "literature", "program", "programme", "project",
    "campaign", "plan", "report", "declaration", "agreement", "treaty", "accord",
    "convention", "resolution", "regulation", "bill", "amendment", "article", "clause",
    "case", "trial", "investigation", "inquiry", "independent", "independence",
    "liberation", "front", "alliance", "coalition", "opposition", "majority", "minority",
    "islanders", "highway", "stadium", "shrine", "tomb", "prison", "jail", "academy",
    "supervisory", "audit", "tax", "revenue", "customs", "forest", "forces", "guard",
    "coast", "line", "unit", "cafe", "restaurant", "hotel", "market", "mall", "centre",
    "circuit", "appeals", "relay", "race", "prize", "medal", "series", "show", "film",
    "movie", "book", "album", "song", "magazine", "channel", "network", "radio", "airlines",
    "airways", "motors", "systems", "technologies", "holdings", "partners", "capital",
];

/// Endings of English common nouns (`Directorate`, `Supervision`, `Membership`): a
/// capitalised word with one of them is a translated term, not a name.
#[rustfmt::skip]
const EN_COMMON_ENDINGS: &[&str] = &[
    "tion", "sion", "ment", "ship", "ness", "ism", "ists", "ology", "ities", "ity", "ate",
    "ive", "ives",
];

/// Turkish inflectional suffixes (folded), chained after a stem: case, possessive, plural,
/// `-ki`, `-lik`. A remainder made of these leaves the word the stem's.
#[rustfmt::skip]
const INFLECTION: &[&str] = &[
    "i", "u", "a", "e", "n", "si", "su", "yi", "yu", "ya", "ye", "na", "ne", "in", "un",
    // The past copula (`Kraliçesiydi`, `Fransızlardı`).
    "ydi", "ydu", "di", "du", "ti", "tu",
    "nin", "nun", "da", "de", "ta", "te", "nda", "nde", "dan", "den", "tan", "ten", "ndan",
    "nden", "ki", "la", "le", "yla", "yle", "ler", "lar", "lik", "luk", "lig", "lug", "im",
    "um", "imiz", "umuz", "iniz", "unuz", "miz", "muz", "niz", "nuz", "nca", "nce", "dir",
    "dur", "tir", "tur",
];

/// The plural and the copula (folded), which a name may take without an apostrophe.
const PLURAL_COPULA: &[&str] = &["lar", "ler", "dir", "dur", "tir", "tur"];

/// Derivational suffixes of names (folded): demonyms (`Suriyeli`), languages (`Türkçe`).
const DERIVATION: &[&str] = &["li", "lu", "ca", "ce", "ci", "cu"];

/// A proper name found in a text: one word or a run of adjacent name words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name {
    /// The name as written, without a trailing apostrophe suffix (`Kim Jong Un` of
    /// `Kim Jong Un'un`).
    pub span: Span,
    /// Each word of the name, suffix stripped.
    pub words: Vec<Span>,
}

/// Finds the proper names of `text`: capitalised words that are not sentence openers, titles,
/// days or months (Turkish) or common capitalised words (English), and acronyms; adjacent
/// name words form one name.
pub fn names(text: &str, lang: Lang) -> Vec<Name> {
    let side = Side::new(text, lang);
    side.name_runs()
        .into_iter()
        .map(|run| side.name_of(run))
        .collect()
}

/// Whether every word of the English `name` traces to the Turkish `source_tr`: the same word
/// folded (with inflection and transliteration tolerated), or an English form of a name the
/// source has (exonyms, demonyms). Words that are not names by themselves (titles, `The`)
/// need no trace.
pub fn traced(name: &str, source_tr: &str) -> bool {
    let source = Side::new(source_tr, Lang::Tr);
    let trace = Trace::new(&source);
    let name = Side::new(name, Lang::En);
    name.tokens
        .iter()
        .filter(|t| t.cap && !en_word(t))
        .all(|t| trace.traces(&t.key))
}

/// The name check on one block: a [`Kind::Name`] finding for each source name the translation
/// lacks, a [`Kind::InventedName`] finding for each translation name the source lacks.
pub fn check(source: &str, translation: &str, out: &mut Vec<Finding>) {
    let src = Side::new(source, Lang::Tr);
    let tgt = Side::new(translation, Lang::En);
    let mut lost = Vec::new();
    missing(&src, &tgt, &mut lost);
    let mut made = Vec::new();
    invented(&src, &tgt, &mut made);
    pair_renderings(&mut lost, &mut made);
    out.append(&mut lost);
    out.append(&mut made);
}

/// Removes each source name the translation lacks together with an invented name that sounds
/// like it: the translator's own spelling of the same name (`Meşhed` as `Mashhad`, `Sfenks` as
/// `Sphinx`, `Yakup` as `Jacob`, `Katalanca` as `Catalan`). Only a name missing on one side
/// and unexplained on the other is compared this loosely, one with one, so a name swapped for
/// another (`Putin` → `Peterson`) still shows on both sides.
fn pair_renderings(lost: &mut Vec<Finding>, made: &mut Vec<Finding>) {
    let words = |span: &Option<Span>, lang: Lang| -> Vec<Sound> {
        span.iter()
            .flat_map(|s| s.text.split([' ', '-']))
            .filter(|w| !w.is_empty())
            .map(|w| Sound::of(&fold(w), lang))
            .collect()
    };
    let mut i = 0;
    while i < lost.len() {
        let src = words(&lost[i].source, Lang::Tr);
        let partner = made.iter().position(|m| {
            let tgt = words(&m.translation, Lang::En);
            src.iter().any(|a| tgt.iter().any(|b| a.meets(b, 2)))
        });
        match partner {
            Some(k) => {
                made.remove(k);
                lost.remove(i);
            }
            None => i += 1,
        }
    }
}

/// How a word sounds, roughly, for comparing spellings of one name across the two
/// languages ([`Sound::of`]).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Sound {
    /// Opens with a vowel or a dropped letter (`Anton` does not sound like `Nathan`).
    open: bool,
    /// The consonants as they sound.
    frame: String,
    /// The first vowel, folded.
    vowel: Option<char>,
}

impl Sound {
    /// How a folded word sounds: English `ph` is f, `c` before e, i, y is s and otherwise k,
    /// `x` is ks; Turkish `c` and English `j` (one sound), `y` and `h` are dropped, English
    /// `w` is Turkish `v`; voiced and voiceless pairs meet (b p, d t, g k, v f, z s: Turkish
    /// writes the voiceless one at a word's end, `Yakup`, `Davut`); vowels are dropped and
    /// doubled letters are single.
    fn of(folded: &str, lang: Lang) -> Sound {
        let chars: Vec<char> = folded.chars().collect();
        let mut out = String::new();
        let mut i = 0;
        while i < chars.len() {
            let (c, next) = (chars[i], chars.get(i + 1).copied());
            let (sound, used): (&[char], usize) = match (lang, c, next) {
                (Lang::En, 'p', Some('h')) => (&['f'], 2),
                (Lang::En, 't', Some('h')) => (&['t'], 2),
                (Lang::En, 's', Some('h')) => (&['s'], 2),
                (Lang::En, 'c', Some('h')) => (&[], 2),
                (Lang::En, 'c', Some('e' | 'i' | 'y')) => (&['s'], 1),
                (Lang::En, 'c' | 'q', _) => (&['k'], 1),
                (Lang::En, 'x', _) => (&['k', 's'], 1),
                (Lang::En, 'j', _) | (Lang::Tr, 'c', _) => (&[], 1),
                (Lang::En, 'w', _) => (&['f'], 1),
                (_, 'b', _) => (&['p'], 1),
                (_, 'd', _) => (&['t'], 1),
                (_, 'g', _) => (&['k'], 1),
                (_, 'v', _) => (&['f'], 1),
                (_, 'z', _) => (&['s'], 1),
                (_, 'a' | 'e' | 'i' | 'o' | 'u' | 'y' | 'h', _) => (&[], 1),
                (_, c, _) if c.is_alphabetic() => (std::slice::from_ref(&chars[i]), 1),
                _ => (&[], 1),
            };
            for &s in sound {
                if !out.ends_with(s) {
                    out.push(s);
                }
            }
            i += used;
        }
        let open = chars.first().is_none_or(|&c| !loud(c, lang));
        let vowel = chars.iter().copied().find(|c| VOWELS.contains(c));
        Sound {
            open,
            frame: out,
            vowel,
        }
    }

    /// Whether two sounds are one name's: the same opening, and frames equal with `min`
    /// consonants or more (with exactly two, the same first vowel too: `Pago` is not
    /// `Picchu`); with one more, one the start of the other (`Kongo`/`Congolese`); with two
    /// more, one edit apart.
    fn meets(&self, other: &Sound, min: usize) -> bool {
        let (a, b) = (&self.frame, &other.frame);
        let m = a.chars().count().min(b.chars().count());
        self.open == other.open
            && (m >= min && a == b && (m > 2 || self.vowel == other.vowel)
                || m > min && (a.starts_with(b.as_str()) || b.starts_with(a.as_str()))
                || m > min + 1 && edit_distance_within(a, b, 1))
    }
}

/// Whether a word's first letter is sounded by [`Sound::of`]: a consonant it keeps.
fn loud(c: char, lang: Lang) -> bool {
    !matches!(
        (lang, c),
        (_, 'a' | 'e' | 'i' | 'o' | 'u' | 'y' | 'h') | (Lang::En, 'j') | (Lang::Tr, 'c')
    ) && c.is_alphabetic()
}

/// Source names with no counterpart in the translation.
fn missing(src: &Side, tgt: &Side, out: &mut Vec<Finding>) {
    let runs = src.name_runs();
    let trace = Trace::new(src);
    let mut seen = HashSet::new();
    let mut renderings = tgt.common_capitals(&trace);
    for run in &runs {
        let name = src.name_of(run.clone());
        if src.run_found(run.clone(), &runs, tgt, &trace) || !seen.insert(fold(&name.span.text)) {
            continue;
        }
        if renderings > 0 && src.common_words(run.clone()) {
            renderings -= 1;
            continue;
        }
        let english = src.english_forms(run.clone());
        let expected = if english.is_empty() {
            String::new()
        } else {
            format!(" (in English: {})", english.join(" / "))
        };
        out.push(Finding {
            kind: Kind::Name,
            message: format!(
                "the name \"{}\"{expected} in the source is not in the translation",
                name.span.text
            ),
            source: Some(name.span),
            translation: None,
        });
    }
}

/// Translation names that trace to nothing in the source.
fn invented(src: &Side, tgt: &Side, out: &mut Vec<Finding>) {
    let trace = Trace::new(src);
    let terms = tgt.term_words();
    let mut spans: Vec<Span> = Vec::new();
    for run in tgt.member_runs() {
        let untraced: Vec<usize> = run
            .clone()
            .filter(|&i| {
                let key = &tgt.tokens[i].key;
                !terms[i] && !trace.traces(key) && !trace.sounds_like(&tgt.sounds[i])
            })
            .collect();
        if !untraced.iter().any(|&i| tgt.is_candidate(i)) {
            continue;
        }
        let (first, last) = (untraced[0], untraced[untraced.len() - 1]);
        let span = Span::of(tgt.text, tgt.tokens[first].start, tgt.tokens[last].end);
        if !spans.iter().any(|s| fold(&s.text) == fold(&span.text)) {
            spans.push(span);
        }
    }
    // Three words or more (`Xi Jinping` and `Dalian`) are too many to be translated terms.
    let words: usize = spans
        .iter()
        .map(|s| s.text.split_whitespace().count())
        .sum();
    if spans.is_empty() || words <= 2 && translated_terms(src, tgt, &trace) {
        return;
    }
    for span in spans {
        out.push(Finding {
            kind: Kind::InventedName,
            message: format!(
                "the name \"{}\" in the translation matches no name in the source",
                span.text
            ),
            source: None,
            translation: Some(span),
        });
    }
}

/// Whether the capitalised English words that trace to no source word are as few as the
/// capitalised source words that are not names (titles, words of institution names) and have
/// no English counterpart: then they are most likely those
/// words translated (`Varlık Fonu` → `Wealth Fund`, `Meclis` → `Parliament`), not names the
/// translation made up.
fn translated_terms(src: &Side, tgt: &Side, trace: &Trace) -> bool {
    let counted = |t: &Token| t.cap && !t.initial && !t.title;
    let names: HashSet<usize> = src
        .name_runs()
        .into_iter()
        .flat_map(|run| src.required(run))
        .collect();
    // A title and the words that make it up (`Devlet Başkanı`, `Dışişleri Bakanı`) come out
    // as an English title (`President`, `Foreign Minister`), which is never counted below:
    // they leave no English word to excuse.
    let title = |i: usize| {
        let t = |k: usize| src.tokens.get(k).filter(|t| t.cap);
        t(i).is_some_and(|t| tr_title(&t.key.fold))
            || t(i + 1).is_some_and(|n| n.joined && tr_title(&n.key.fold))
    };
    let source = (0..src.tokens.len())
        .filter(|&i| {
            counted(&src.tokens[i]) && !names.contains(&i) && !title(i) && !src.found_in(i, tgt)
        })
        .count();
    let english = tgt
        .tokens
        .iter()
        .filter(|t| counted(t) && !bare_function(&t.key.fold) && !trace.matches(&t.key))
        .count();
    english <= source
}

/// A word as compared: folded, and its consonant skeleton for transliterations.
#[derive(Debug, Clone)]
struct Key {
    fold: String,
    skel: String,
}

impl Key {
    fn new(folded: String) -> Key {
        let skel = skeleton(&folded);
        Key { fold: folded, skel }
    }
}

/// One word of a text.
#[derive(Debug, Clone)]
struct Token {
    /// Byte range of the word without an apostrophe suffix (`Pekin` of `Pekin'de`).
    start: usize,
    end: usize,
    key: Key,
    /// The word with the dots of `U.S.` removed, case kept (acronyms compare case-sensitively).
    plain: String,
    /// Starts with a capital letter (and has no digit).
    cap: bool,
    /// Two or more letters, all capitals (`ABD`, `NATO`, `U.S.`).
    acronym: bool,
    /// Carried an apostrophe suffix (`Pekin'de`, `Putin's`).
    suffixed: bool,
    /// Opens a sentence, a quotation or what follows a colon.
    initial: bool,
    /// In a sentence that capitalises most of its words (a headline).
    title: bool,
    /// Only spaces or a hyphen between this word and the previous one, which had no suffix.
    joined: bool,
}

/// A text cut into words, with what the name check needs to know of them.
struct Side<'a> {
    text: &'a str,
    lang: Lang,
    tokens: Vec<Token>,
    /// For Turkish: the exonym entries each word is part of.
    exonyms: Vec<Vec<usize>>,
    /// Folded words that appear capitalised away from a sentence start.
    capitalised: HashSet<String>,
    /// Folded words that appear in lower case: a capitalised one of them is a common word.
    lower: HashSet<String>,
    /// How each word sounds ([`Sound::of`]).
    sounds: Vec<Sound>,
}

impl<'a> Side<'a> {
    fn new(text: &'a str, lang: Lang) -> Side<'a> {
        let mut tokens = tokenize(text);
        mark_sentences(text, &mut tokens);
        let exonyms = match lang {
            Lang::Tr => exonym_cover(&tokens),
            Lang::En => vec![Vec::new(); tokens.len()],
        };
        let capitalised = tokens
            .iter()
            .filter(|t| t.cap && !t.initial && !t.title)
            .map(|t| t.key.fold.clone())
            .collect();
        let lower = tokens
            .iter()
            .filter(|t| t.plain.chars().next().is_some_and(char::is_lowercase))
            .map(|t| t.key.fold.clone())
            .collect();
        let sounds = tokens
            .iter()
            .map(|t| Sound::of(&t.key.fold, lang))
            .collect();
        Side {
            text,
            lang,
            tokens,
            exonyms,
            capitalised,
            lower,
            sounds,
        }
    }

    /// Whether word `i` is a name word: capitalised, not a title-like word, and (Turkish) with
    /// evidence of being a name when it opens a sentence or stands in a headline.
    fn is_member(&self, i: usize) -> bool {
        let t = &self.tokens[i];
        if !t.cap || !t.acronym && !t.suffixed && self.lower.contains(&t.key.fold) {
            return false;
        }
        match self.lang {
            Lang::En => !en_word(t),
            Lang::Tr => {
                let table = exonyms();
                let listed = !self.exonyms[i].is_empty();
                let in_phrase = self.exonyms[i]
                    .iter()
                    .any(|&e| table.entries[e].key.len() > 1);
                let common = tr_not_name(&t.key.fold)
                    || numeral_group(&t.key.fold)
                    || house_compound(&t.key.fold)
                    || !t.suffixed && !listed && common_tail(&t.key.fold)
                    || t.acronym && en_not_name(&t.key.fold);
                if common && !in_phrase {
                    return false;
                }
                let evidence = t.suffixed || t.acronym || listed;
                // Away from a headline: any capitalised word not opening a sentence, and one
                // that opens it when it is capitalised elsewhere too or is no Turkish word.
                evidence
                    || !t.title
                        && (!t.initial
                            || self.capitalised.contains(&t.key.fold)
                            || opens_with_name(&t.plain, &t.key.fold))
            }
        }
    }

    /// The words of a source name run that the translation must have. A run that closes an
    /// institution's name (`Varlık Fonu`, `Hacettepe Üniversitesi`) is translated word for
    /// word, so only its acronyms and the words of the exonym table (`Ankara Üniversitesi`)
    /// are required.
    fn required(&self, run: Range<usize>) -> Vec<usize> {
        let last = &self.tokens[run.end - 1];
        let next = self.tokens.get(run.end).filter(|t| t.joined && t.cap);
        // A listed common noun with a possessive ending closes a compound: `Varlık Fonu`; but
        // a place keeps its name before a word for its kind: `Sarmada Kasabası`.
        let possessive = |f: &str| compound_head(f) || f.ends_with(['i', 'u']);
        // A title after a name is no part of it: `Queensland Senatörü`.
        let head = |f: &str| tr_not_name(f) && !tr_title(f) && !place_head(f);
        // A place named with common words before its kind is translated: `Timsah Nehri`
        // (Crocodile River), `Kızıl Deniz`; `Sarmada Kasabası` keeps its name.
        let described = run.len() > 1
            && place_head(&last.key.fold)
            && (run.start..run.end - 1).all(|i| !self.tokens[i].suffixed && self.plain_word(i));
        let institution = described
            || !place_head(&last.key.fold) && compound_head(&last.key.fold)
            || next.is_some_and(|t| head(&t.key.fold) && possessive(&t.key.fold));
        run.filter(|&i| !institution || self.tokens[i].acronym || !self.exonyms[i].is_empty())
            .collect()
    }

    /// Whether the source name `run` is in the translation: its last word (a surname:
    /// `Erdogan` for `Recep Tayyip Erdoğan`) or half its required words (`Kim Jong Un` as `Kim
    /// Jong-un`). A word that other names of the block share (`Şükür` of `Hakan Şükür` and
    /// `Selmet Şükür`) tells them apart only when the name has no other word. A name found
    /// only in part is not found when the translation puts a name of its own beside the part
    /// ([`Side::renamed`]).
    fn run_found(
        &self,
        run: Range<usize>,
        runs: &[Range<usize>],
        tgt: &Side,
        trace: &Trace,
    ) -> bool {
        let required = self.required(run.clone());
        let shared = |i: usize| {
            let fold = &self.tokens[i].key.fold;
            runs.iter()
                .filter(|r| **r != run && !r.is_empty())
                .any(|r| r.clone().any(|k| self.tokens[k].key.fold == *fold))
        };
        // A common word before a listed name is no mark of its own (`Erken` and `Geç` of
        // `Erken Orta Çağlar` and `Geç Orta Çağlar`, the Early and Late Middle Ages): it is
        // translated, not kept. Beside other names it may be a given name (`Adil`, `Ali`).
        let listed = run.clone().any(|i| !self.exonyms[i].is_empty());
        let common = |i: usize| listed && self.plain_word(i);
        let own: Vec<usize> = required
            .iter()
            .copied()
            .filter(|&i| !shared(i) && !common(i))
            .collect();
        let words = if own.is_empty() { required } else { own };
        if words.is_empty() {
            return true;
        }
        let hits: Vec<usize> = words
            .iter()
            .copied()
            .filter(|&i| self.found_in(i, tgt))
            .collect();
        let found = hits.len() * 2 >= words.len()
            || hits.contains(&(run.end - 1))
            || hits.contains(&run.start);
        found && (hits.len() == words.len() || !hits.iter().any(|&i| self.renamed(i, tgt, trace)))
    }

    /// Whether the translation gives source word `i` another name beside it: an English word
    /// that is `i` stands next to a capitalised word that is no common word and traces to
    /// nothing in the source (`Ellen McCourt` → `German McCourt`). Dropping a name's other
    /// words (`Recep Tayyip Erdoğan` → `President Erdogan`) is no such change.
    fn renamed(&self, i: usize, tgt: &Side, trace: &Trace) -> bool {
        let key = &self.tokens[i].key;
        let stranger = |k: usize| {
            let t = &tgt.tokens[k];
            t.cap && !en_word(t) && !trace.traces(&t.key)
        };
        (0..tgt.tokens.len())
            .filter(|&k| tgt.tokens[k].cap && similar(key, &tgt.tokens[k].key))
            .any(|k| {
                let before = k > 0 && tgt.tokens[k].joined && stranger(k - 1);
                let after = tgt.tokens.get(k + 1).is_some_and(|t| t.joined) && stranger(k + 1);
                before || after
            })
    }

    /// English: whether word `i` counts as a name on its own, not only beside one.
    fn is_candidate(&self, i: usize) -> bool {
        let t = &self.tokens[i];
        if t.title {
            return t.acronym;
        }
        !t.initial || t.acronym || t.suffixed
    }

    /// Maximal runs of adjacent member words.
    fn member_runs(&self) -> Vec<Range<usize>> {
        let mut runs: Vec<Range<usize>> = Vec::new();
        for i in 0..self.tokens.len() {
            if !self.is_member(i) {
                continue;
            }
            // A word that closes a compound (`Akademisi` of `İsveç Akademisi Nobel Edebiyat
            // Komitesi`) ends a name: what follows starts another.
            let closes = |k: usize| {
                self.lang == Lang::Tr
                    && !self.tokens[k].acronym
                    && compound_head(&self.tokens[k].key.fold)
            };
            let joins = i > 0
                && self.tokens[i].joined
                && !self.stands_alone(i)
                && !self.stands_alone(i - 1)
                && !closes(i - 1);
            match runs.last_mut() {
                Some(r) if r.end == i && joins => r.end = i + 1,
                _ => runs.push(i..i + 1),
            }
        }
        runs
    }

    /// English: the words of translated terms, capitalised phrases with a common noun of
    /// institutions or places (`Sovereign Wealth Fund`, `West Oak Lane`), continued through
    /// `of`/`for`/`the` (`Court of Appeals`). A name before `of` stays a name (`Xi Jinping of
    /// the Communist Party`).
    fn term_words(&self) -> Vec<bool> {
        let n = self.tokens.len();
        let mut terms = vec![false; n];
        let mut i = 0;
        let mut after_term = false;
        while i < n {
            if !self.tokens[i].cap {
                let connector = matches!(self.tokens[i].key.fold.as_str(), "of" | "for" | "the");
                after_term &= connector && self.tokens[i].joined;
                i += 1;
                continue;
            }
            let mut j = i + 1;
            while j < n && self.tokens[j].cap && self.tokens[j].joined {
                j += 1;
            }
            let continued = after_term && self.tokens[i].joined;
            let term = continued || (i..j).any(|k| en_term(&self.tokens[k].key.fold));
            terms[i..j].iter_mut().for_each(|t| *t = term);
            after_term = term;
            i = j;
        }
        terms
    }

    /// Turkish: whether word `i`, a name run by itself, is more likely a capitalised common
    /// word (`Durum`, `Bayrak`, `Bacakta`): a word of the Turkish list, itself or inflected,
    /// with no apostrophe suffix, no exonym entry and no word for a kind of place after it. A
    /// name beside it (`Barış Manço`) or a suffix (`Barış'ın`) keeps a listed word a name.
    fn lone_word(&self, i: usize) -> bool {
        let t = &self.tokens[i];
        // A word for a kind of place after it makes it a place's name: `Sarmada Kasabası`.
        // Not so for a common noun as the list has it (`Timsah Nehri`, Crocodile River): a
        // place named so is translated.
        let place = self
            .tokens
            .get(i + 1)
            .is_some_and(|n| n.joined && n.cap && place_head(&n.key.fold))
            && !base_word(&t.key.fold);
        !t.suffixed && !t.acronym && !place && self.exonyms[i].is_empty() && tr_word(&t.key.fold)
    }

    /// Whether a name run is made of Turkish common words only (`Devrim'den`, `Kutsal
    /// Kitap'a`, `Özgürlük Heykeli`): a proper use of common words, which a translation puts
    /// in capitalised English words (the Revolution, the Bible, the Statue of Liberty).
    /// Without a dictionary those cannot be matched word for word, so such a run counts as
    /// found when the translation has a capitalised common word left over for it
    /// ([`Side::common_capitals`]). Acronyms, words of the exonym table and words the lists
    /// know as names (`Osman`, `Aslan`) are not common words.
    fn common_words(&self, run: Range<usize>) -> bool {
        // One word must be a common word as it stands; in a run of several, words may be
        // inflected (`Daha Garip Önseziler`): one such word alone may be a foreign name that
        // reads like an inflected Turkish word (`Platini`, platinum + -i).
        let several = run.len() > 1;
        run.clone().all(|i| {
            let t = &self.tokens[i];
            self.plain_word(i)
                || several && !t.acronym && self.exonyms[i].is_empty() && tr_word(&t.key.fold)
        })
    }

    /// Whether word `i` is a Turkish common word as it stands ([`base_word`]), with no
    /// exonym entry and not an acronym.
    fn plain_word(&self, i: usize) -> bool {
        let t = &self.tokens[i];
        !t.acronym && self.exonyms[i].is_empty() && base_word(&t.key.fold)
    }

    /// English: how many capitalised common words (`Revolution`, `Sun`, `Statue`) stand away
    /// from a sentence start and a headline, are no function word or title, and trace to no
    /// source word: what is left to render the source's names made of common words.
    fn common_capitals(&self, trace: &Trace) -> usize {
        self.tokens
            .iter()
            .filter(|t| {
                t.cap
                    && !t.initial
                    && !t.title
                    && !t.acronym
                    && en_word(t)
                    && !en_function(&t.key.fold)
                    && !en_title(&t.key.fold)
                    && !trace.matches(&t.key)
            })
            .count()
    }

    /// Whether word `i` is a name of the exonym table on its own (`Kazak` of `Kazak
    /// Balandin`, `Rusya` of `Rusya Devlet Başkanı Putin`): it makes a name by itself rather
    /// than with its neighbours.
    fn stands_alone(&self, i: usize) -> bool {
        let table = exonyms();
        let entries = &self.exonyms[i];
        entries.iter().any(|&e| !table.entries[e].alias)
            && entries.iter().all(|&e| table.entries[e].key.len() == 1)
    }

    /// The runs that are names: for English, those with a candidate word.
    fn name_runs(&self) -> Vec<Range<usize>> {
        let runs = self.member_runs();
        match self.lang {
            Lang::Tr => runs
                .into_iter()
                .filter(|r| r.len() > 1 || !self.lone_word(r.start))
                .collect(),
            Lang::En => runs
                .into_iter()
                .filter(|r| r.clone().any(|i| self.is_candidate(i)))
                .collect(),
        }
    }

    fn name_of(&self, run: Range<usize>) -> Name {
        let toks = &self.tokens[run];
        let (start, end) = (toks[0].start, toks[toks.len() - 1].end);
        Name {
            span: Span::of(self.text, start, end),
            words: toks
                .iter()
                .map(|t| Span::of(self.text, t.start, t.end))
                .collect(),
        }
    }

    /// Whether source word `i` has a counterpart among the words of the translation `tgt`:
    /// itself (folded, inflected, transliterated) or an English form from the exonym table.
    fn found_in(&self, i: usize, tgt: &Side) -> bool {
        let key = &self.tokens[i].key;
        // Capitalised English words may be inflected or transliterated forms; so may a
        // lower-case one when both are long (`Hepatit` as `hepatitis`, `Trambolin` as
        // `trampoline`: loanwords that Turkish capitalises in a title); a shorter one
        // (`twitter`) must be the same word.
        let same = |t: &Token| {
            let long = |k: &Key| k.fold.chars().count() >= 6;
            if t.cap || long(key) && long(&t.key) {
                similar(key, &t.key)
            } else {
                t.key.skel == key.skel && key.fold.chars().count() >= 4
            }
        };
        let table = exonyms();
        let entries: Vec<&Entry> = self.exonyms[i]
            .iter()
            .map(|&e| &table.entries[e])
            .filter(|e| !e.alias)
            .collect();
        // A word of a listed phrase is found only with the phrase: `Kuzey Kore` is not `South
        // Korea`.
        let in_phrase = entries.iter().any(|e| e.key.len() > 1);
        if !in_phrase && tgt.tokens.iter().any(same) {
            return true;
        }
        // A country's dollar written as a sign (`1000 ABD doları` as `$1000`, `Avustralya
        // doları` as `AUD$`).
        let dollar = self
            .tokens
            .get(i + 1)
            .is_some_and(|n| n.joined && n.key.fold.starts_with("dolar"));
        if dollar && tgt.text.contains('$') {
            return true;
        }
        // The translator's spelling of the name (`Mashhad` for `Meşhed`), as
        // [`Trace::sounds_like`] lets it trace.
        let sound = &self.sounds[i];
        if !in_phrase
            && tgt
                .tokens
                .iter()
                .zip(&tgt.sounds)
                .any(|(t, other)| t.cap && sound.meets(other, 3))
        {
            return true;
        }
        entries
            .iter()
            .any(|e| e.english.iter().any(|alt| alternative_present(alt, tgt)))
    }

    /// The English forms the exonym table gives for the words of `run`.
    fn english_forms(&self, run: Range<usize>) -> Vec<String> {
        let table = exonyms();
        let mut forms: Vec<String> = Vec::new();
        for &e in run.flat_map(|i| self.exonyms[i].iter()) {
            if table.entries[e].alias {
                continue;
            }
            for alt in &table.entries[e].english {
                if forms.len() < 3 && !forms.contains(alt) {
                    forms.push(alt.clone());
                }
            }
        }
        forms
    }
}

/// Whether an English alternative (`North Korea`, `US`) is in the translation: each of its
/// words, acronyms with their case (`US` is not `us`).
fn alternative_present(alt: &str, tgt: &Side) -> bool {
    alt.split([' ', '-']).filter(|w| !w.is_empty()).all(|w| {
        let letters: String = w.chars().filter(|c| c.is_alphanumeric()).collect();
        if letters.chars().count() >= 2 && letters.chars().all(|c| c.is_uppercase()) {
            tgt.tokens.iter().any(|t| t.plain == letters)
        } else {
            let key = Key::new(fold(&letters));
            tgt.tokens.iter().any(|t| similar(&key, &t.key))
        }
    })
}

/// What an English word may trace to: the words of the source, and the English forms of the
/// exonym entries the source has.
struct Trace<'a> {
    keys: Vec<Key>,
    /// How the source's words sound ([`Sound::of`]).
    sounds: &'a [Sound],
}

impl<'a> Trace<'a> {
    fn new(src: &'a Side) -> Trace<'a> {
        let table = exonyms();
        let mut keys: Vec<Key> = src.tokens.iter().map(|t| t.key.clone()).collect();
        let entries: HashSet<usize> = src.exonyms.iter().flatten().copied().collect();
        let mut entries: Vec<usize> = entries.into_iter().collect();
        entries.sort_unstable();
        for e in entries {
            for alt in &table.entries[e].english {
                for w in alt.split([' ', '-']).filter(|w| !w.is_empty()) {
                    keys.push(Key::new(fold(w)));
                }
            }
        }
        Trace {
            keys,
            sounds: &src.sounds,
        }
    }

    /// Whether an English word sounds like a word of the source, capitalised or not, by the
    /// measure that pairs renderings ([`pair_renderings`]) made one consonant stricter: the
    /// translator's spelling of a name the source writes otherwise or in lower case
    /// (`Sphinx` for `sfenks`, `Christian` for `Hristiyan`).
    fn sounds_like(&self, sound: &Sound) -> bool {
        self.sounds.iter().any(|s| sound.meets(s, 3))
    }

    /// Whether an English word is not a name, or one the source has.
    fn traces(&self, key: &Key) -> bool {
        en_not_name(&key.fold) || self.matches(key)
    }

    /// Whether an English word is one of the source's words or their English forms.
    fn matches(&self, key: &Key) -> bool {
        self.keys.iter().any(|k| similar(key, k))
    }
}

/// Cuts `text` into words: letters and digits, apostrophes inside (a suffix after an
/// apostrophe that starts lower-case is stripped), dotted acronyms (`U.S.`) as one word.
fn tokenize(text: &str) -> Vec<Token> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let byte = |k: usize| chars.get(k).map_or(text.len(), |&(b, _)| b);
    let mut out: Vec<Token> = Vec::new();
    let mut prev_end = 0;
    let mut i = 0;
    while i < chars.len() {
        if !chars[i].1.is_alphanumeric() {
            i += 1;
            continue;
        }
        let (j, stem_end, plain) = match dotted_acronym(&chars, i) {
            Some(j) => {
                let letters = (i..j).map(|k| chars[k].1).filter(|c| *c != '.').collect();
                (j, j, letters)
            }
            None => {
                let (j, stem_end) = word_end(&chars, i);
                (j, stem_end, text[byte(i)..byte(stem_end)].to_string())
            }
        };
        let (start, end) = (byte(i), byte(stem_end));
        let gap = &text[prev_end..start];
        let suffixed_prev = out.last().is_some_and(|t: &Token| t.suffixed);
        out.push(make_token(
            start,
            end,
            plain,
            stem_end < j,
            gap,
            suffixed_prev,
        ));
        prev_end = byte(j);
        i = j;
    }
    out
}

/// The end of the word starting at `chars[i]` and the end of its stem (before an apostrophe
/// suffix), as char indices.
fn word_end(chars: &[(usize, char)], i: usize) -> (usize, usize) {
    let mut j = i;
    let mut stem_end = None;
    while j < chars.len() {
        let c = chars[j].1;
        if c.is_alphanumeric() {
            j += 1;
        } else if matches!(c, '\'' | '’')
            && j + 1 < chars.len()
            && chars[j + 1].1.is_alphanumeric()
            && j > i
        {
            if stem_end.is_none() && chars[j + 1].1.is_lowercase() {
                stem_end = Some(j);
            }
            j += 1;
        } else {
            break;
        }
    }
    (j, stem_end.unwrap_or(j))
}

/// `U.S.`, `U.N.`: single capitals each followed by a dot, at least two. Returns the end.
fn dotted_acronym(chars: &[(usize, char)], i: usize) -> Option<usize> {
    let mut j = i;
    while j + 1 < chars.len() && chars[j].1.is_uppercase() && chars[j + 1].1 == '.' {
        let next = chars.get(j + 2).map(|c| c.1);
        if next.is_some_and(|c| c.is_alphanumeric()) && !next.is_some_and(|c| c.is_uppercase()) {
            break;
        }
        j += 2;
    }
    ((j - i) >= 4).then_some(j)
}

fn make_token(
    start: usize,
    end: usize,
    plain: String,
    suffixed: bool,
    gap: &str,
    suffixed_prev: bool,
) -> Token {
    let has_digit = plain.chars().any(|c| c.is_numeric());
    let letters = plain.chars().filter(|c| c.is_alphabetic()).count();
    let cap = !has_digit && plain.chars().next().is_some_and(char::is_uppercase);
    let acronym = cap && letters >= 2 && plain.chars().all(|c| !c.is_lowercase());
    let joined = start > 0
        && !suffixed_prev
        && !gap.is_empty()
        && gap.chars().all(|c| c == ' ' || c == '\u{a0}' || c == '-');
    let opens = gap.trim_end().ends_with([':', '–', '—', '•'])
        || gap.ends_with(['"', '“', '«', '‘', '\'']) && !gap.trim_end().is_empty();
    Token {
        start,
        end,
        key: Key::new(fold(&plain)),
        plain,
        cap: cap && (letters >= 2 || acronym),
        acronym,
        suffixed,
        initial: opens,
        title: false,
        joined,
    }
}

/// Marks the words that open a sentence, the sentences written in title case (headlines),
/// and those written in capitals (no word of which is then taken for a name).
fn mark_sentences(text: &str, tokens: &mut [Token]) {
    let mut k = 0;
    for range in crate::text::chunk::sentences(text, true) {
        let first = k;
        while k < tokens.len() && tokens[k].start < range.end {
            k += 1;
        }
        if first == k {
            continue;
        }
        let sentence = &mut tokens[first..k];
        sentence[0].initial = true;
        let ended = text[range].trim_end().ends_with(['.', '!', '?', ':', ';']);
        let title = is_title(&sentence[1..], ended);
        let shouting = is_shouting(sentence);
        for t in sentence.iter_mut() {
            t.title |= title || shouting;
            if shouting {
                t.cap = false;
                t.acronym = false;
            }
        }
    }
}

/// A headline: most words of four letters or more capitalised, and either no sentence
/// punctuation at the end or no such word in lower case.
fn is_title(rest: &[Token], ended: bool) -> bool {
    let long: Vec<&Token> = rest
        .iter()
        .filter(|t| t.key.fold.chars().count() >= 4 && !t.plain.contains(char::is_numeric))
        .collect();
    let caps = long.iter().filter(|t| t.cap).count();
    !ended && long.len() >= 3 && caps * 10 >= long.len() * 7
}

/// Written in capitals: half the words or more (three at least) in capitals, or a word of
/// eight capitals (no acronym is that long).
fn is_shouting(sentence: &[Token]) -> bool {
    let upper = |t: &&Token| {
        t.plain.chars().filter(|c| c.is_alphabetic()).count() >= 2
            && t.plain.chars().all(|c| !c.is_lowercase())
    };
    let words = sentence
        .iter()
        .filter(|t| t.plain.chars().any(char::is_alphabetic));
    let upper_count = sentence.iter().filter(upper).count();
    let long_upper = sentence
        .iter()
        .filter(upper)
        .any(|t| t.plain.chars().count() >= 8);
    long_upper || upper_count >= 3 && upper_count * 2 >= words.count()
}

/// Folds a word for comparison: lower case (the Turkish dotless ı and the I of either
/// language meet at `i`), diacritics removed (`Erdoğan` → `erdogan`, `Şişli` → `sisli`).
pub fn fold(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    for c in word.chars().flat_map(char::to_lowercase) {
        match c {
            'ı' | 'î' | 'ï' | 'í' | 'ì' => out.push('i'),
            'ş' | 'ș' | 'š' | 'ś' => out.push('s'),
            'ğ' => out.push('g'),
            'ç' | 'č' | 'ć' => out.push('c'),
            'ö' | 'ô' | 'ó' | 'ò' | 'õ' | 'ø' => out.push('o'),
            'ü' | 'û' | 'ú' | 'ù' => out.push('u'),
            'â' | 'à' | 'á' | 'ä' | 'ã' | 'å' => out.push('a'),
            'é' | 'è' | 'ê' | 'ë' => out.push('e'),
            'ñ' => out.push('n'),
            'ý' | 'ÿ' => out.push('y'),
            'ț' => out.push('t'),
            'ł' => out.push('l'),
            'ž' | 'ź' | 'ż' => out.push('z'),
            'ř' => out.push('r'),
            'đ' => out.push('d'),
            'ß' => out.push_str("ss"),
            '\u{300}'..='\u{36f}' | '\'' | '’' | '.' => {}
            c => out.push(c),
        }
    }
    out
}

/// A consonant skeleton for comparing transliterations: c, j, k, q are one sound class, w is
/// v, x is ks, y is i, h is dropped, doubled letters are single (`Muhammed` and `Mohammed`,
/// `Kaliforniya` and `California` come close).
fn skeleton(folded: &str) -> String {
    let mut out = String::with_capacity(folded.len());
    for c in folded.chars() {
        let mapped = match c {
            'c' | 'j' | 'k' | 'q' => 'k',
            'w' => 'v',
            'y' => 'i',
            'h' => continue,
            'x' => {
                out.push('k');
                's'
            }
            c => c,
        };
        if !out.ends_with(mapped) {
            out.push(mapped);
        }
    }
    out
}

/// Whether two words are the same name: equal folded, one an inflected or derived form of the
/// other (a shared stem of four letters or more, at most two letters short of the shorter
/// word: `Erdogan`/`Erdoğanın`, `China`/`Chinese`), or one edit apart on the skeleton (two
/// for long words: `Esad`/`Assad`).
fn similar(a: &Key, b: &Key) -> bool {
    if a.fold == b.fold {
        return true;
    }
    let shorter = a.fold.chars().count().min(b.fold.chars().count());
    let prefix = a
        .fold
        .chars()
        .zip(b.fold.chars())
        .take_while(|(x, y)| x == y)
        .count();
    if shorter >= 4 && prefix >= 4 && prefix + 2 >= shorter {
        return true;
    }
    if a.skel == b.skel {
        return !a.skel.is_empty();
    }
    // Transliterations differ most in their vowels (`Holokost`/`Holocaust`,
    // `Konstantinopolis`/`Constantinople`): long consonant frames that agree.
    let frame = |k: &Key| -> String { k.skel.chars().filter(|c| !"aeiou".contains(*c)).collect() };
    let (fa, fb) = (frame(a), frame(b));
    let m = fa.chars().count().min(fb.chars().count());
    if m >= 4 && fa == fb || m >= 6 && edit_distance_within(&fa, &fb, 1) {
        return true;
    }
    let n = a.skel.chars().count().min(b.skel.chars().count());
    let max = match n {
        0..=3 => return false,
        4..=8 => 1,
        _ => 2,
    };
    edit_distance_within(&a.skel, &b.skel, max)
}

/// Whether the Levenshtein distance of `a` and `b` is at most `max`.
fn edit_distance_within(a: &str, b: &str, max: usize) -> bool {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len().abs_diff(b.len()) > max {
        return false;
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut row = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            row[j + 1] = sub.min(prev[j + 1] + 1).min(row[j] + 1);
        }
        if row.iter().min().is_some_and(|&m| m > max) {
            return false;
        }
        prev = row;
    }
    prev[b.len()] <= max
}

/// Whether `rest` is a chain of the given suffixes (empty included).
fn suffix_chain(rest: &str, sets: &[&[&str]]) -> bool {
    if rest.is_empty() {
        return true;
    }
    sets.iter()
        .flat_map(|s| s.iter())
        .any(|s| rest.strip_prefix(s).is_some_and(|r| suffix_chain(r, sets)))
}

/// Whether folded `word` is `stem` plus inflection.
fn inflects(word: &str, stem: &str) -> bool {
    word.strip_prefix(stem)
        .is_some_and(|rest| suffix_chain(rest, &[INFLECTION]))
}

/// Whether a folded Turkish word is a title (`Senatörü`, `Valisi`): the first part of
/// [`TR_NOT_NAMES`].
fn tr_title(folded: &str) -> bool {
    static STEMS: OnceLock<Vec<String>> = OnceLock::new();
    let stems = STEMS.get_or_init(|| {
        let end = TR_NOT_NAMES.iter().position(|w| *w == "kurum").unwrap_or(0);
        TR_NOT_NAMES[..end].iter().map(|w| fold(w)).collect()
    });
    stems.iter().any(|s| inflects(folded, s))
}

/// Whether a folded Turkish word is one of [`TR_NOT_NAMES`], itself or inflected. A stem of
/// three letters or fewer inflected (`hak` + `-a-n`) does not count when the Turkish list
/// knows the word as a name (`Hakan`, `Adana`), unless the ending is a possessive that
/// closes a compound (`Adası`, `Üssü`).
fn tr_not_name(folded: &str) -> bool {
    static STEMS: OnceLock<Vec<String>> = OnceLock::new();
    let stems = STEMS.get_or_init(|| TR_NOT_NAMES.iter().map(|w| fold(w)).collect());
    let name = || turkish_words().get(folded) == Some(&TrForm::Name);
    stems.iter().any(|s| {
        let Some(rest) = folded.strip_prefix(s.as_str()) else {
            return false;
        };
        let possessive = matches!(rest, "" | "i" | "u" | "si" | "su" | "ni" | "nu");
        inflects(folded, s) && (s.chars().count() > 3 || possessive || !name())
    })
}

/// Whether a folded Turkish word is a number word (`Üç`), an ordinal (`Dokuzuncu`) or a
/// number made a noun of a group (`Yedili`, the seven; `Beşli`), the last two inflected or
/// not: capitalised in the name of a team, a prize or an era (`Büyük Yedili`, `Üç Krallık`),
/// translated (`Magnificent Seven`, `Three Kingdoms`), never kept.
fn numeral_group(folded: &str) -> bool {
    const NUMBERS: &[&str] = &[
        "bir", "iki", "uc", "dort", "bes", "alti", "yedi", "sekiz", "dokuz", "on", "yirmi", "otuz",
        "kirk", "elli", "altmis", "yetmis", "seksen", "doksan", "yuz", "bin",
    ];
    NUMBERS.iter().any(|n| {
        folded.strip_prefix(n).is_some_and(|rest| {
            rest.is_empty()
                || ["li", "lu", "inci", "uncu", "nci", "ncu"].iter().any(|d| {
                    rest.strip_prefix(d)
                        .is_some_and(|r| suffix_chain(r, &[INFLECTION]))
                })
        })
    })
}

/// Whether an English word is a function word that translates no capitalised Turkish word:
/// one of [`EN_FUNCTION`] other than the forms of address (`Mr`, `Dr`), which translate
/// `Sayın`, `Bay`, `Dr.`.
fn bare_function(folded: &str) -> bool {
    en_function(folded)
        && !matches!(
            folded,
            "mr" | "mrs" | "ms" | "dr" | "prof" | "sir" | "madam"
        )
}

/// Whether an English word opens sentences without naming anything (`The`, `However`).
fn en_function(folded: &str) -> bool {
    static WORDS: OnceLock<HashSet<&'static str>> = OnceLock::new();
    WORDS
        .get_or_init(|| EN_FUNCTION.iter().copied().collect())
        .contains(folded)
}

/// Whether a capitalised English word is not a name: a function word, a title, a day or
/// month, a common acronym, a term, or a word with a common-noun ending.
fn en_not_name(folded: &str) -> bool {
    static WORDS: OnceLock<HashSet<&'static str>> = OnceLock::new();
    let words = WORDS.get_or_init(|| EN_TITLES.iter().copied().collect());
    let listed = |w: &str| words.contains(w) || en_function(w) || en_term(w);
    listed(folded)
        || folded.strip_suffix('s').is_some_and(listed)
        || folded.chars().count() >= 7 && EN_COMMON_ENDINGS.iter().any(|e| folded.ends_with(e))
}

/// Whether an English word is no name: one of [`en_not_name`], or (unless an acronym: `US` is
/// no `us`) a common word of [`ENGLISH_WORDS`], itself or without a plural `-s`.
fn en_word(t: &Token) -> bool {
    static WORDS: OnceLock<HashSet<&'static str>> = OnceLock::new();
    let words = WORDS.get_or_init(|| {
        ENGLISH_WORDS
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .collect()
    });
    let fold = t.key.fold.as_str();
    let common = |w: &str| words.contains(w);
    en_not_name(fold) || !t.acronym && (common(fold) || fold.strip_suffix('s').is_some_and(common))
}

/// Whether an English word is a title, a direction, a day or month or a common acronym
/// ([`EN_TITLES`]).
fn en_title(folded: &str) -> bool {
    static WORDS: OnceLock<HashSet<&'static str>> = OnceLock::new();
    WORDS
        .get_or_init(|| EN_TITLES.iter().copied().collect())
        .contains(folded)
}

/// Whether a capitalised English word is a common noun of institution and place names.
fn en_term(folded: &str) -> bool {
    static WORDS: OnceLock<HashSet<&'static str>> = OnceLock::new();
    let words = WORDS.get_or_init(|| EN_TERMS.iter().copied().collect());
    words.contains(folded) || folded.strip_suffix('s').is_some_and(|w| words.contains(w))
}

/// Turkish words for kinds of places, which follow a place's name (`Sarmada Kasabası`,
/// `Cilvegözü Sınır Kapısı`) that translations keep.
#[rustfmt::skip]
const PLACE_HEADS: &[&str] = &[
    "kasaba", "ilçe", "köy", "mahalle", "cadde", "sokak", "sokağ", "bulvar", "meydan", "belde",
    "kent", "şehir", "bölge", "dağ", "dağları", "nehir", "nehr", "göl", "ada", "adaları",
    "vadi", "ova", "körfez", "yarımada", "kapı", "kale", "cami", "saray", "park", "köprü",
    "havalimanı", "havaalanı", "liman", "stadyum", "üniversite", "hastane", "eyalet", "kule",
    "tepe", "koy", "burun", "boğaz", "çarşı", "pazar", "semt", "otel", "müze", "kilise",
];

fn place_head(folded: &str) -> bool {
    static STEMS: OnceLock<Vec<String>> = OnceLock::new();
    let stems = STEMS.get_or_init(|| PLACE_HEADS.iter().map(|w| fold(w)).collect());
    stems.iter().any(|s| inflects(folded, s))
}

/// Endings (folded) of Turkish common nouns: case suffixes after a plural or possessive, and
/// `-lik`. A name takes its suffixes after an apostrophe, so a capitalised word that ends so
/// without one (`Suçlarla`, `Listesindeki`, `Okçuluk`) is a common noun of a title or an
/// institution's name.
#[rustfmt::skip]
const COMMON_TAILS: &[&str] = &[
    "larla", "lerle", "larin", "lerin", "larda", "lerde", "lardan", "lerden", "lara", "lere",
    "larina", "lerine", "larinda", "lerinde", "sinda", "sinde", "sindan", "sinden", "sini",
    "sinin", "siyla", "siyle", "sina", "sine", "ndaki", "ndeki", "inda", "inde", "indan",
    "inden", "ligin", "lugun", "ligini", "lugunu", "ligine", "luguna", "inin", "unun", "unu",
    "daki", "deki", "taki", "teki", "ndan", "nden",
];

/// Whether a folded Turkish word (written without an apostrophe) ends like a common noun:
/// see [`COMMON_TAILS`]; `-lik`/`-luk` and the plural only on longer words (`Haluk`, `Malik`,
/// `Güler` are names).
fn common_tail(folded: &str) -> bool {
    let long = folded.chars().count() >= 7;
    COMMON_TAILS.iter().any(|e| folded.ends_with(e))
        || long
            && ["lik", "luk", "lar", "ler"]
                .iter()
                .any(|e| folded.ends_with(e))
}

/// Whether a folded Turkish word is a compound noun closed by `ev` or `hane` (house) with a
/// possessive: `Konukevi` (guesthouse), `Huzurevi`, `Kütüphanesi`. Such a word is translated
/// (`Guesthouse`), not kept, even with a suffix after an apostrophe (`Konukevi'nde`).
fn house_compound(folded: &str) -> bool {
    let n = folded.chars().count();
    n >= 7
        && ["evi", "evleri", "hanesi", "haneleri"]
            .iter()
            .any(|e| folded.ends_with(e))
}

/// Whether a folded Turkish word ends like the head of a compound noun (`Tepesi`,
/// `Birliği`, `Oyunları`) or an adjective or verbal noun (`Anayasal`, `Araştırma`): the
/// common-noun words that close the names of institutions, which translations render in
/// English rather than keep.
fn compound_head(folded: &str) -> bool {
    let n = folded.chars().count();
    let vowel_si = ["si", "su"].iter().any(|e| {
        folded
            .strip_suffix(e)
            .is_some_and(|r| r.ends_with(['a', 'e', 'i', 'o', 'u']))
    });
    vowel_si
        || ["lari", "leri", "ligi", "lugu"]
            .iter()
            .any(|e| folded.ends_with(e))
        || n >= 6 && ["sal", "sel"].iter().any(|e| folded.ends_with(e))
        || n >= 7 && ["ma", "me"].iter().any(|e| folded.ends_with(e)) && tr_form(folded)
}

/// What the Turkish word list says of a form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TrForm {
    /// A common word (`durum`, `can`): its suffixed forms are written without an apostrophe.
    Word,
    /// No sign either way (`geçtiğimiz`, `fatma`).
    Unclassified,
    /// A name (`mehmet`, `aydın`): written with its suffixes after an apostrophe.
    Name,
}

/// The Turkish word list, parsed once: folded form → what it is.
fn turkish_words() -> &'static HashMap<&'static str, TrForm> {
    static WORDS: OnceLock<HashMap<&'static str, TrForm>> = OnceLock::new();
    WORDS.get_or_init(|| {
        TURKISH_WORDS
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(|l| match l.split_once('\t') {
                Some((w, "name")) => (w, TrForm::Name),
                Some((w, _)) => (w, TrForm::Unclassified),
                None => (l, TrForm::Word),
            })
            .collect()
    })
}

/// Whether a folded Turkish word is a common word (`durum`, `bayrak`) of the list, itself or
/// inflected after a listed stem of five letters or more (`bacakta`, `lehçeye`).
fn tr_word(folded: &str) -> bool {
    let words = turkish_words();
    let listed = |w: &str| words.get(w) == Some(&TrForm::Word);
    listed(folded) || inflected_from(folded, 5, listed) || lemma_form(folded)
}

/// Whether a folded Turkish word that the wordfreq list does not know as a name is a lemma of
/// [`TURKISH_LEMMAS`], itself or inflected (`hepatit`, `fotosentezin`), its last consonant
/// softened before a vowel (`ödeneği` of `ödenek`). A stem the list knows as a name is none.
fn lemma_form(folded: &str) -> bool {
    let lemmas = &turkish_lemmas().0;
    let words = turkish_words();
    if words.get(folded) == Some(&TrForm::Name) {
        return false;
    }
    let known = |stem: &str| lemmas.contains(stem) && words.get(stem) != Some(&TrForm::Name);
    folded
        .char_indices()
        .skip(4)
        .map(|(cut, _)| cut)
        .chain([folded.len()])
        .any(|cut| {
            let (stem, rest) = folded.split_at(cut);
            if !suffix_chain(rest, &[INFLECTION, DERIVATION]) {
                return false;
            }
            let hard = match stem.chars().last() {
                Some('b') if rest.starts_with(VOWELS) => Some('p'),
                Some('d') if rest.starts_with(VOWELS) => Some('t'),
                Some('g') if rest.starts_with(VOWELS) => Some('k'),
                _ => None,
            };
            known(stem)
                || hard.is_some_and(|h| {
                    let mut s = stem[..stem.len() - 1].to_string();
                    s.push(h);
                    known(&s)
                })
        })
}

/// Whether a folded Turkish word is a common word as it stands, uninflected: a word of the
/// wordfreq list or a lemma of Zemberek's (`timsah`; not `sarmada`, `sarma` + `-da`).
fn base_word(folded: &str) -> bool {
    match turkish_words().get(folded) {
        Some(TrForm::Word) => true,
        Some(TrForm::Name) => false,
        _ => turkish_lemmas().0.contains(folded),
    }
}

/// The lemma list, parsed once: common-word lemmas, and verb stems.
fn turkish_lemmas() -> &'static (HashSet<&'static str>, HashSet<&'static str>) {
    static LEMMAS: OnceLock<(HashSet<&'static str>, HashSet<&'static str>)> = OnceLock::new();
    LEMMAS.get_or_init(|| {
        let mut lemmas = HashSet::new();
        let mut verbs = HashSet::new();
        for line in TURKISH_LEMMAS
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            match line.split_once('\t') {
                Some((stem, _)) => verbs.insert(stem),
                None => lemmas.insert(line),
            };
        }
        (lemmas, verbs)
    })
}

/// Vowels of folded Turkish.
const VOWELS: [char; 5] = ['a', 'e', 'i', 'o', 'u'];

/// Whether a folded Turkish word is in the list as a word or a form with no sign either way
/// (`geçtiğimiz`), itself or inflected after such a stem of four letters or more.
fn tr_form(folded: &str) -> bool {
    let words = turkish_words();
    let listed = |w: &str| words.get(w).is_some_and(|f| *f != TrForm::Name);
    listed(folded) || inflected_from(folded, 4, listed)
}

/// Whether the word `plain` that opens a sentence is a name by itself: a name of the Turkish
/// list (`Mehmet`, `Putin`), or a word the list does not know (`Fitbit`, `Mizrachi`) that has
/// no letter of Turkish's own (`ç`, `ğ`, `ı`, `İ`, `ö`, `ş`, `ü`) and does not start with a
/// listed form, common-word lemma or verb stem of five letters or more (`Hastanedeydim`,
/// `Bakınmaya`, `Yuvarlanarak`: Turkish words the list lacks).
fn opens_with_name(plain: &str, folded: &str) -> bool {
    let words = turkish_words();
    match words.get(folded) {
        Some(form) => *form == TrForm::Name,
        None => {
            let turkish = plain.chars().any(|c| "çğıİöşüÇĞÖŞÜ".contains(c));
            let (lemmas, verbs) = turkish_lemmas();
            let known_start = folded.char_indices().skip(5).any(|(cut, _)| {
                let start = &folded[..cut];
                words.get(start).is_some_and(|f| *f != TrForm::Name)
                    || lemmas.contains(start)
                    || verbs.contains(start)
            });
            !turkish && !known_start && !tr_form(folded) && !lemma_form(folded)
        }
    }
}

/// Whether `folded` is a stem of at least `min` letters for which `listed` holds, followed by
/// a chain of inflectional suffixes.
fn inflected_from(folded: &str, min: usize, listed: impl Fn(&str) -> bool) -> bool {
    folded
        .char_indices()
        .skip(min)
        .any(|(cut, _)| listed(&folded[..cut]) && suffix_chain(&folded[cut..], &[INFLECTION]))
}

/// One line of the exonym table.
#[derive(Debug)]
struct Entry {
    /// The Turkish name, folded, word by word.
    key: Vec<String>,
    /// The Turkish name is an acronym (`ABD`): matched only whole and in capitals.
    acronym: bool,
    /// English forms, as written.
    english: Vec<String>,
    /// Only traces English words, is no translation (`curated-alias`: `Rusya` → Moscow,
    /// `Erdoğan` → Recep): a source name is not found through it.
    alias: bool,
}

/// The exonym table, indexed by the first word of each Turkish name.
struct Exonyms {
    entries: Vec<Entry>,
    by_first: HashMap<String, Vec<usize>>,
}

/// The exonym table, parsed once.
fn exonyms() -> &'static Exonyms {
    static TABLE: OnceLock<Exonyms> = OnceLock::new();
    TABLE.get_or_init(|| parse_exonyms(EXONYMS_TSV))
}

fn parse_exonyms(tsv: &str) -> Exonyms {
    let mut entries = Vec::new();
    let mut by_first: HashMap<String, Vec<usize>> = HashMap::new();
    for line in tsv
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let mut cols = line.split('\t');
        let (Some(tr), Some(en)) = (cols.next(), cols.next()) else {
            continue;
        };
        let alias = cols.next() == Some("curated-alias");
        let key: Vec<String> = tr.split_whitespace().map(fold).collect();
        if key.is_empty() {
            continue;
        }
        let acronym = tr.chars().filter(|c| c.is_alphabetic()).count() >= 2
            && tr.chars().all(|c| !c.is_lowercase());
        by_first
            .entry(key[0].clone())
            .or_default()
            .push(entries.len());
        entries.push(Entry {
            key,
            acronym,
            english: en.split('|').map(str::to_string).collect(),
            alias,
        });
    }
    Exonyms { entries, by_first }
}

/// For each word, the exonym entries whose Turkish name covers it: one word equal to the name
/// or the name plus inflection or a demonym suffix (`Rusya'nın`, `Suriyeli`), or a run of
/// adjacent words (`Kuzey Kore'de`) whose last may be inflected.
fn exonym_cover(tokens: &[Token]) -> Vec<Vec<usize>> {
    let table = exonyms();
    let mut cover = vec![Vec::new(); tokens.len()];
    for (i, t) in tokens.iter().enumerate() {
        let fold = &t.key.fold;
        for (cut, _) in fold.char_indices().skip(1).chain([(fold.len(), ' ')]) {
            let Some(ids) = table.by_first.get(&fold[..cut]) else {
                continue;
            };
            for &e in ids {
                if let Some(len) = entry_matches(&table.entries[e], tokens, i, cut) {
                    (i..i + len).for_each(|k| cover[k].push(e));
                }
            }
        }
    }
    cover
}

/// How many words of `tokens` from `i` the entry covers, given that its first word matched the
/// first `cut` bytes of word `i`.
fn entry_matches(entry: &Entry, tokens: &[Token], i: usize, cut: usize) -> Option<usize> {
    let first = &tokens[i];
    let rest = &first.key.fold[cut..];
    if entry.acronym {
        return (rest.is_empty() && first.acronym).then_some(1);
    }
    if entry.key.len() == 1 {
        // Short names take only derivation and the plural (`Çinli`, `Ruslar`), lest `Çek`
        // (Czech) cover `Çeki` (a cheque).
        let ok = match entry.key[0].chars().count() {
            0..=2 => rest.is_empty(),
            3 => suffix_chain(rest, &[DERIVATION, &["lar", "ler"]]),
            // A name takes its case endings after an apostrophe (`Boğaz'a`); written without
            // one they make a common noun (`boğazına`, to the throat). What a name takes
            // without one is a derivation, the plural or the copula first (`Çinliler`,
            // `Türklerin`, `İspanyolcadır`).
            // The part before an apostrophe is all the name's (`Kızılayı'na`), and a plural
            // name takes its endings as written (`Balkanlarda`).
            _ if first.suffixed
                || entry.key[0].ends_with("lar")
                || entry.key[0].ends_with("ler") =>
            {
                suffix_chain(rest, &[INFLECTION, DERIVATION])
            }
            _ => {
                rest.is_empty()
                    || DERIVATION.iter().chain(PLURAL_COPULA).any(|d| {
                        rest.strip_prefix(d)
                            .is_some_and(|r| suffix_chain(r, &[INFLECTION, DERIVATION]))
                    })
            }
        };
        return ok.then_some(1);
    }
    if !rest.is_empty() || i + entry.key.len() > tokens.len() {
        return None;
    }
    let n = entry.key.len();
    for (k, word) in entry.key.iter().enumerate().skip(1) {
        let t = &tokens[i + k];
        let last = k == n - 1;
        let ok = t.joined && (t.key.fold == *word || last && inflects(&t.key.fold, word));
        if !ok {
            return None;
        }
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(source: &str, translation: &str) -> Vec<(Kind, String)> {
        let mut out = Vec::new();
        check(source, translation, &mut out);
        out.into_iter()
            .map(|f| {
                let span = f
                    .source
                    .or(f.translation)
                    .map(|s| s.text)
                    .unwrap_or_default();
                (f.kind, span)
            })
            .collect()
    }

    #[test]
    fn fold_meets_turkish_and_english_spellings() {
        assert_eq!(fold("Erdoğan"), "erdogan");
        assert_eq!(fold("İSTANBUL"), "istanbul");
        assert_eq!(fold("ISTANBUL"), "istanbul");
        assert_eq!(fold("Şişli"), "sisli");
        assert_eq!(fold("Istanbul"), fold("İstanbul"));
    }

    #[test]
    fn apostrophe_suffixes_are_stripped() {
        let found = names("Medvedev, Pekin'de Erdoğan’ın konuğuydu.", Lang::Tr);
        let texts: Vec<&str> = found.iter().map(|n| n.span.text.as_str()).collect();
        // "Medvedev" opens the sentence without a suffix: a name, as no Turkish word.
        assert_eq!(texts, ["Medvedev", "Pekin", "Erdoğan"]);
        let found = names("Bunlar, Pekin'de Erdoğan’ın konuğuydu.", Lang::Tr);
        let texts: Vec<&str> = found.iter().map(|n| n.span.text.as_str()).collect();
        assert_eq!(texts, ["Pekin", "Erdoğan"]);
    }

    #[test]
    fn titles_days_and_sentence_openers_are_not_names() {
        let found = names(
            "Geçen Pazartesi Cumhurbaşkanı Erdoğan Dışişleri Bakanlığı'nda konuştu.",
            Lang::Tr,
        );
        let texts: Vec<&str> = found.iter().map(|n| n.span.text.as_str()).collect();
        assert_eq!(texts, ["Erdoğan"]);
    }

    #[test]
    fn a_clean_translation_has_no_findings() {
        let tr = "Rusya Devlet Başkanı Putin, Kuzey Kore lideri Kim Jong Un ile Pekin'de \
                  bir araya geldi. ABD ve AB'nin tepkisi bekleniyor.";
        let en = "Russian President Putin met North Korean leader Kim Jong Un in Beijing. \
                  Reactions from the US and the EU are expected.";
        assert_eq!(kinds(tr, en), []);
    }

    #[test]
    fn folded_names_match_across_diacritics() {
        let tr = "Toplantıya Erdoğan ve Şişli Belediye Başkanı katıldı, İstanbul'da.";
        let en = "Erdogan and the mayor of Sisli attended the meeting in Istanbul.";
        assert_eq!(kinds(tr, en), []);
    }

    #[test]
    fn a_dropped_name_is_reported() {
        let tr = "Toplantıya Erdoğan ve Putin katıldı.";
        let en = "Erdogan attended the meeting.";
        assert_eq!(kinds(tr, en), [(Kind::Name, "Putin".to_string())]);
    }

    #[test]
    fn the_readme_case_flags_xi_jinping_and_dalian() {
        let tr = "Rusya Devlet Başkanı Vladimir Putin, Kuzey Kore lideri Kim Jong Un ile \
                  Çin'in başkenti Pekin'de bir araya geldi.";
        let en = "Russian President Vladimir Putin and Chinese President Xi Jinping met in the \
                  Chinese capital of Beijing, in the eastern city of Dalian.";
        let found = kinds(tr, en);
        assert!(found.contains(&(Kind::InventedName, "Xi Jinping".to_string())));
        assert!(found.contains(&(Kind::InventedName, "Dalian".to_string())));
        assert!(found.contains(&(Kind::Name, "Kim Jong Un".to_string())));
        assert!(found.contains(&(Kind::Name, "Kuzey Kore".to_string())));
        assert_eq!(found.len(), 4, "{found:?}");
    }

    #[test]
    fn many_translated_terms_do_not_hide_invented_names() {
        // The source's capitalised common nouns (Zafer Günü, Devlet Başkanı, Kremlin Sarayı)
        // could stand for a word or two of English terms, not for three invented names.
        let tr = "Zafer Günü kutlamalarına katılmak üzere Çin'de bulunan Rusya Devlet Başkanı \
                  Putin, Kim Jong Un ile görüştü. Kremlin Sarayı'ndan yapılan açıklamada, \
                  görüşmenin Diaoyutai Devlet Konukevi'nde gerçekleştiği bildirildi.";
        let en = "Attending the Victory Day celebrations in China, Russian President Putin met \
                  Kim Jong Un and Xi Jinping. The Kremlin said the meeting was held at the \
                  Diaoyutai State Guesthouse in Dalian.";
        let found = kinds(tr, en);
        assert!(found.contains(&(Kind::InventedName, "Xi Jinping".to_string())));
        assert!(found.contains(&(Kind::InventedName, "Dalian".to_string())));
    }

    #[test]
    fn exonyms_and_demonyms_trace() {
        let tr = "Almanya'daki Suriyeli mülteciler Moskova ve Yunanistan'a gitmedi.";
        let en = "Syrian refugees in Germany did not go to Moscow or Greece.";
        assert_eq!(kinds(tr, en), []);
        assert!(traced("Syrians", tr));
        assert!(traced("German", tr));
        assert!(!traced("Xi Jinping", tr));
    }

    #[test]
    fn acronyms_compare_with_case() {
        let tr = "ABD'nin kararı açıklandı.";
        assert_eq!(kinds(tr, "The decision of the US was announced."), []);
        assert_eq!(
            kinds(tr, "The decision was announced to us."),
            [(Kind::Name, "ABD".to_string())]
        );
    }

    #[test]
    fn headlines_keep_only_names_with_evidence() {
        let tr = "28 Yaşındaki Aşçı San Francisco Alışveriş Merkezinde Ölü Bulundu";
        let en = "28-Year-Old Chef Found Dead at San Francisco Mall";
        assert_eq!(kinds(tr, en), []);
        let tr = "Ekonomik Kriz Rusya'yı Vurdu";
        assert_eq!(kinds(tr, "Economic Crisis Hits Russia"), []);
        assert_eq!(
            kinds(tr, "Economic Crisis Hits Country"),
            [(Kind::Name, "Rusya".to_string())]
        );
    }

    #[test]
    fn transliterations_and_possessives_match() {
        let tr = "Esad rejimi ve Muhammed bin Selman'ın açıklaması.";
        let en = "The Assad regime and Mohammed bin Salman's statement.";
        assert_eq!(kinds(tr, en), []);
    }

    #[test]
    fn institution_names_are_translated_not_required() {
        let tr = "Varlık Fonu ve Hacettepe Üniversitesi açıklama yaptı.";
        let en = "The Wealth Fund and Hacettepe University made a statement.";
        assert_eq!(kinds(tr, en), []);
        // A place before a word for its kind stays a name.
        let tr = "Saldırı Sarmada Kasabası'nda oldu.";
        assert_eq!(kinds(tr, "The attack was in Sarmada Town."), []);
        assert_eq!(
            kinds(tr, "The attack was in the town."),
            [(Kind::Name, "Sarmada".to_string())]
        );
    }

    #[test]
    fn translated_terms_are_not_invented_names() {
        let tr = "Kullanıcılar SFPD İhbar Hattını aramalı.";
        let en = "Users should call the SFPD Tip Line.";
        assert_eq!(kinds(tr, en), []);
        let tr = "Toplantıya Erdoğan katıldı.";
        let en = "Erdogan and Xi Jinping of the Communist Party attended the meeting.";
        assert_eq!(
            kinds(tr, en),
            [(Kind::InventedName, "Xi Jinping".to_string())]
        );
    }

    #[test]
    fn aliases_trace_but_do_not_translate() {
        // "Moscow" may stand for Russia in the English ...
        assert!(traced("Moscow", "Rusya'nın tepkisi sert oldu."));
        // ... but a source "Rusya" is not found through it.
        assert_eq!(
            kinds(
                "Rusya'nın tepkisi sert oldu.",
                "Moscow's reaction was harsh."
            ),
            [(Kind::Name, "Rusya".to_string())]
        );
    }

    #[test]
    fn a_shared_surname_does_not_find_both_names() {
        let tr = "Hakan Şükür ve babası Selmet Şükür aranıyor.";
        let en = "Hakan Sukur and his father are wanted.";
        assert_eq!(kinds(tr, en), [(Kind::Name, "Selmet Şükür".to_string())]);
    }

    #[test]
    fn english_names_and_traces() {
        let found = names(
            "Yesterday Xi Jinping met the Foreign Minister in Dalian.",
            Lang::En,
        );
        let texts: Vec<&str> = found.iter().map(|n| n.span.text.as_str()).collect();
        assert_eq!(texts, ["Xi Jinping", "Dalian"]);
        assert!(traced(
            "President Erdogan",
            "Cumhurbaşkanı Erdoğan'ın açıklaması"
        ));
    }

    #[test]
    fn dotted_acronyms_are_one_word() {
        let tokens = tokenize("The U.S. said");
        assert_eq!(tokens[1].plain, "US");
        assert!(tokens[1].acronym);
    }

    #[test]
    fn english_common_words_are_not_invented_names() {
        let tr = "Toplantıya Erdoğan katıldı.";
        let en = "Erdogan attended the meeting in the Lounge after Inception.";
        assert_eq!(kinds(tr, en), []);
        // An acronym is no word: `US` is not `us`.
        assert_eq!(
            kinds(tr, "Erdogan attended the meeting with the US."),
            [(Kind::InventedName, "US".to_string())]
        );
    }

    #[test]
    fn words_that_are_also_names_stay_names() {
        let tr = "Toplantıya Erdoğan katıldı.";
        for name in ["Brown", "Bush", "Rose"] {
            let en = format!("Erdogan attended the meeting with {name}.");
            assert_eq!(kinds(tr, &en), [(Kind::InventedName, name.to_string())]);
        }
        let tr = "Toplantıya Erdoğan ve Bush katıldı.";
        assert_eq!(kinds(tr, "Erdogan and Bush attended the meeting."), []);
    }

    #[test]
    fn a_guesthouse_is_translated_not_kept() {
        let tr = "Görüşme Diaoyutai Devlet Konukevi'nde yapıldı.";
        let en = "The meeting was held at the Diaoyutai State Guesthouse.";
        assert_eq!(kinds(tr, en), []);
    }

    #[test]
    fn english_word_list_has_words_but_not_names() {
        let words: HashSet<&str> = ENGLISH_WORDS
            .lines()
            .filter(|l| !l.starts_with('#'))
            .collect();
        assert!(words.len() > 40_000);
        assert!(words.contains("inception") && words.contains("lounge"));
        for name in ["brown", "bush", "turkey", "rose"] {
            assert!(!words.contains(name), "{name}");
        }
    }

    #[test]
    fn a_lone_turkish_common_word_is_no_name() {
        // `Durum` and `Bayrak` are words the list knows: capitalised alone, no name.
        let tr = "Toplantıda Durum Değerlendirmesi yapıldı, Bayrak töreni de oldu.";
        let en = "A situation assessment was made at the meeting, and a flag ceremony too.";
        assert_eq!(kinds(tr, en), []);
        // A suffix after an apostrophe, or a name beside it, keeps a listed word a name.
        let tr = "Toplantıya Barış'ın babası katıldı.";
        assert_eq!(
            kinds(tr, "Her father attended the meeting."),
            [(Kind::Name, "Barış".to_string())]
        );
        assert!(names("Dün Barış Manço konuştu.", Lang::Tr)
            .iter()
            .any(|n| n.span.text == "Barış Manço"));
        assert!(names("Dün Barış görüşmesi oldu.", Lang::Tr).is_empty());
    }

    #[test]
    fn rarer_words_of_a_title_are_no_names() {
        // Zemberek's lemmas, inflected and softened, where wordfreq's forms say nothing.
        assert!(lemma_form("hepatit") && lemma_form("fotosentezin") && lemma_form("odenegi"));
        assert!(!lemma_form("erdogan") && !lemma_form("mizrachi") && !lemma_form("banff"));
        // A number made a group's noun (`Büyük Yedili`, `Son Beşli`) is translated.
        let tr = "Bu, 'Büyük Yedili' zaferiydi ve onlar \"Son Beşli\" oldu.";
        let en = "It was the 'Magnificent Seven' win and they became the \"Final Five\".";
        assert_eq!(kinds(tr, en), []);
        assert!(numeral_group("yedili") && numeral_group("ucluden") && !numeral_group("yediler"));
        // A loanword capitalised in a title, lower case in English.
        let tr = "Merck ile Hepatit C patenti mücadelesinde Gilead kazandı.";
        assert_eq!(
            kinds(tr, "Gilead won the hepatitis C patent fight with Merck."),
            []
        );
    }

    #[test]
    fn a_title_excuses_no_invented_name() {
        // `Devlet Başkanı` comes out as `President`: it leaves nothing to excuse `Xi Jinping`,
        // which the source does not have.
        let tr = "Rusya Devlet Başkanı Vladimir Putin, Çin'in başkenti Pekin'de konuştu.";
        let en = "Russian President Vladimir Putin and Chinese leader Xi Jinping spoke in Beijing.";
        assert_eq!(
            kinds(tr, en),
            [(Kind::InventedName, "Xi Jinping".to_string())]
        );
        // Words of an institution's name translated (`Varlık Fonu` → Wealth Fund) still do.
        let tr = "Türkiye Varlık Fonu açıklama yaptı.";
        let en = "The Turkey Wealth Fund made a statement.";
        assert_eq!(kinds(tr, en), []);
    }

    #[test]
    fn translated_parts_of_names_are_not_required() {
        // The copula after a language's name; numbers and ordinals in an era's or a place's
        // name; a place named with common words before its kind.
        let tr = "Köyün dili Gürcücedir ve Üç Krallık döneminden beri Dokuzuncu Bölge \
                  Timsah Nehri kıyısındadır.";
        let en = "The village's language is Georgian, and since the Three Kingdoms era the \
                  Ninth District has been on the banks of the Crocodile River.";
        assert_eq!(kinds(tr, en), []);
        // `Sarmada Kasabası` keeps its name: Sarmada is no common word.
        let tr = "Dün Sarmada Kasabası'nda pazar kuruldu.";
        assert_eq!(
            kinds(tr, "A market was set up in the town yesterday."),
            [(Kind::Name, "Sarmada".to_string())]
        );
        // A compound's head closes a name: `Nobel` is a name of its own.
        let tr = "Bilim Akademisi Nobel Komitesi bir açıklama yaptı.";
        let en = "The Nobel committee of the Academy of Sciences made a statement.";
        assert_eq!(kinds(tr, en), []);
    }

    #[test]
    fn a_name_spelt_the_translators_way_is_no_loss_and_no_invention() {
        // Each source name is missing as written and each English one untraced; they sound
        // alike, so they are one name.
        for (tr, en) in [
            (
                "Heykel Mısır'daki Sfenks'in bir kopyası.",
                "The statue copies the Sphinx of Egypt.",
            ),
            (
                "Hacılar Meşhed'e yürüdü.",
                "The pilgrims walked to Mashhad.",
            ),
            (
                "Kitap Yakup'un oğullarını anlatır.",
                "The book tells of the sons of Jacob.",
            ),
            ("Ailesi Bavyera'dan geldi.", "His family came from Bavaria."),
            ("Çoğu Katalanca konuşur.", "Most of them speak Catalan."),
            ("Kongo'da seçim yapıldı.", "A Congolese election was held."),
        ] {
            assert_eq!(kinds(tr, en), [], "{tr} / {en}");
        }
        // A name put in another's place sounds like nothing of the source: both findings stay.
        assert_eq!(
            kinds(
                "Putin'in açıklaması bekleniyor.",
                "A statement by Peterson is expected."
            ),
            [
                (Kind::Name, "Putin".to_string()),
                (Kind::InventedName, "Peterson".to_string())
            ]
        );
        // Frames alike but not the opening (`Anton`/`Nathan`) or, for two consonants, not the
        // first vowel (`Pago`/`Picchu`): different names.
        assert_eq!(
            kinds("Anton'un yerine geçti.", "He replaced Nathan.").len(),
            2
        );
        assert_eq!(kinds("Pago'ya uçtu.", "She flew to Picchu.").len(), 2);
        assert_eq!(kinds("Sharon'la yarıştı.", "He raced Warren.").len(), 2);
    }

    #[test]
    fn a_name_the_source_writes_in_lower_case_traces() {
        // `kadiyani` is written in lower case; `Qadiyani` sounds like it.
        let tr = "Pencap'taki kadiyani cemaati toplandı.";
        assert_eq!(kinds(tr, "The Qadiyani community in Punjab gathered."), []);
        assert_eq!(
            kinds(tr, "The Mormon community in Punjab gathered."),
            [(Kind::InventedName, "Mormon".to_string())]
        );
    }

    #[test]
    fn names_made_of_common_words_are_rendered_by_capitalised_words() {
        let tr = "Devrim'den sonra meslekler herkese açıldı.";
        assert_eq!(
            kinds(tr, "After the Revolution, trades were opened to all."),
            []
        );
        // No capitalised English word is left to render it: the loss shows.
        assert_eq!(
            kinds(tr, "Afterwards, trades were opened to all."),
            [(Kind::Name, "Devrim".to_string())]
        );
        // A name the word lists know as a name stays a name (`Mehmet`), whatever the English
        // capitalises. (One they know as a word too, `Osman`, would pass here: the price.)
        assert_eq!(
            kinds(
                "Mehmet'in Meclis konuşması uzun sürdü.",
                "The Parliament speech by Warren ran long."
            ),
            [
                (Kind::Name, "Mehmet".to_string()),
                (Kind::InventedName, "Warren".to_string())
            ]
        );
        // A work's title of inflected common words (`Önseziler`).
        assert_eq!(
            kinds(
                "Yazar Daha Garip Önseziler adlı kitabı yazdı.",
                "The author wrote Stranger Premonitions."
            ),
            []
        );
    }

    #[test]
    fn shared_names_are_told_apart_by_more_than_a_common_word() {
        let tr =
            "Yüksek Ortaçağlar, Erken Orta Çağlar'dan sonra geldi ve Geç Orta Çağlar onu izledi.";
        let en = "The High Middle Ages came after the Early Middle Ages and before the Late Middle Ages.";
        assert_eq!(kinds(tr, en), []);
    }

    #[test]
    fn past_copula_and_dollar_signs() {
        assert_eq!(
            kinds(
                "Luna, Extreme'in ilk Kraliçesiydi. Vichy yönetimindekiler Fransızlardı.",
                "Luna was the first Queen of Extreme. Those under Vichy were French."
            ),
            []
        );
        let tr = "Her ihlal için 1000 ABD doları ceza kesilir.";
        assert_eq!(kinds(tr, "Each offence is fined $1000."), []);
        assert_eq!(
            kinds(tr, "Each offence is fined 1000 pounds."),
            [(Kind::Name, "ABD".to_string())]
        );
    }

    #[test]
    fn transliterations_meet_on_their_consonants() {
        let tr = "Müze, Holokost ve Konstantinopolis üzerine iki sergi açtı.";
        let en = "The museum opened two exhibitions, on the Holocaust and on Constantinople.";
        assert_eq!(kinds(tr, en), []);
        assert_eq!(
            kinds(
                tr,
                "The museum opened two exhibitions, on the war and on the city."
            ),
            [
                (Kind::Name, "Holokost".to_string()),
                (Kind::Name, "Konstantinopolis".to_string())
            ]
        );
        // A sentence may open with a Turkish verb form the word lists lack.
        assert!(names("Yuvarlanarak küçük parçalara ayrılır.", Lang::Tr).is_empty());
    }

    #[test]
    fn a_case_ending_without_an_apostrophe_makes_no_listed_name() {
        // `Boğazına` (to his palate) opens the sentence with a case ending and no apostrophe:
        // a common noun, though `Boğaz` is listed; `Boğaz'a` is the Bosphorus.
        let tr = "Boğazına düşkün biri olan Başkan Roosevelt, Fifth Avenue yemeklerini seviyordu.";
        assert!(names(tr, Lang::Tr)
            .iter()
            .all(|n| n.span.text != "Boğazına"));
        let tr = "Gemiler dün Boğaz'a girdi.";
        assert_eq!(
            kinds(tr, "The ships sailed in yesterday."),
            [(Kind::Name, "Boğaz".to_string())]
        );
        // Before an apostrophe the part is all the name's; a plural name inflects as written.
        let tr = "Bağışını Türk Kızılayı'na verdi, Balkanlarda 7 ülkede.";
        let en = "He gave it to the Turkish Red Crescent, in 7 countries in the Balkans.";
        assert_eq!(kinds(tr, en), []);
        assert_eq!(
            kinds(
                tr,
                "He gave it to the Turkish Red Crescent, in 7 countries."
            ),
            [(Kind::Name, "Balkanlarda".to_string())]
        );
    }

    #[test]
    fn a_sentence_may_open_with_a_name_the_word_list_does_not_know() {
        let tr = "Mizrachi, saldırganı görmeniz gerektiğini söylüyor.";
        assert_eq!(
            kinds(tr, "Gilead says you must see your attacker."),
            [(Kind::Name, "Mizrachi".to_string())]
        );
        assert_eq!(kinds(tr, "Mizrachi says you must see your attacker."), []);
        // A name of the list opens a sentence too; Turkish words the list lacks do not.
        assert_eq!(
            kinds("Mehmet dün geldi.", "He came yesterday."),
            [(Kind::Name, "Mehmet".to_string())]
        );
        for tr in [
            "Hastanedeydim dün.",
            "Kaçamayacağını biliyordu.",
            "Geçtiğimiz yıl geldi.",
        ] {
            assert!(names(tr, Lang::Tr).is_empty(), "{tr}");
        }
    }

    #[test]
    fn a_name_found_only_in_part_beside_another_name_is_missing() {
        let tr = "JDC başkanı Ellen McCourt açıklama yaptı.";
        let found = kinds(tr, "JDC chair German McCourt made a statement.");
        assert!(
            found.contains(&(Kind::Name, "Ellen McCourt".to_string())),
            "{found:?}"
        );
        // The surname alone, or with a title, is the name.
        assert_eq!(kinds(tr, "JDC chair McCourt made a statement."), []);
        assert_eq!(kinds(tr, "JDC chair Ms McCourt made a statement."), []);
    }

    #[test]
    fn short_title_stems_do_not_swallow_names() {
        // `Hakan` is `hak` + `-a-n` and `Adana` `ada` + `-na`, but the list knows them as names.
        let found = names("Dün Hakan Şükür Adana'ya gitti.", Lang::Tr);
        let texts: Vec<&str> = found.iter().map(|n| n.span.text.as_str()).collect();
        assert_eq!(texts, ["Hakan Şükür", "Adana"]);
        // A possessive still closes a compound: `Midilli Adası` is Lesbos Island.
        assert!(tr_not_name(&fold("Adası")));
        assert!(tr_not_name(&fold("Üssü")));
    }

    #[test]
    fn a_listed_demonym_is_a_name_whatever_its_ending() {
        let tr = "Amerikalıların verdiği ad şaşırttı.";
        assert_eq!(kinds(tr, "The name the Americans gave was a surprise."), []);
        assert_eq!(
            kinds(tr, "The name the visitors gave was a surprise."),
            [(Kind::Name, "Amerikalıların".to_string())]
        );
    }

    #[test]
    fn a_form_of_address_does_not_excuse_an_invented_name() {
        // `Sayın` is translated by `Mr`: it leaves no Turkish word for `Syria` to translate.
        let tr = "Erdoğan defalarca Sayın Putin'den bahsetti.";
        let en = "Erdogan talked repeatedly of Mr Putin, according to Syria.";
        assert_eq!(kinds(tr, en), [(Kind::InventedName, "Syria".to_string())]);
        assert_eq!(kinds(tr, "Erdogan talked repeatedly of Mr Putin."), []);
    }

    #[test]
    fn a_foreign_name_ending_like_a_verbal_noun_stays_required() {
        let tr = "Öğretim görevlisi Seyoum Teshome konuştu.";
        assert_eq!(
            kinds(tr, "Lecturer Adil spoke."),
            [
                (Kind::Name, "Seyoum Teshome".to_string()),
                (Kind::InventedName, "Adil".to_string())
            ]
        );
    }

    #[test]
    fn turkish_word_list_tells_words_from_names() {
        let words = turkish_words();
        for w in ["durum", "bayrak", "can", "deniz"] {
            assert_eq!(words.get(w), Some(&TrForm::Word), "{w}");
        }
        for w in ["mehmet", "hakan", "putin", "istanbul"] {
            assert_eq!(words.get(w), Some(&TrForm::Name), "{w}");
        }
        assert!(tr_word("bacakta") && !tr_word("mehmet") && !tr_word("fitbit"));
    }

    #[test]
    fn exonym_table_parses_with_sources() {
        let table = exonyms();
        assert!(table.entries.len() > 500);
        let pekin = &table.by_first["pekin"];
        assert!(pekin
            .iter()
            .any(|&e| table.entries[e].english.contains(&"Beijing".to_string())));
        for line in EXONYMS_TSV.lines().filter(|l| !l.starts_with('#')) {
            let source = line.split('\t').nth(2).unwrap_or("");
            assert!(
                ["cldr-territory", "cldr-city", "curated", "curated-alias"].contains(&source),
                "{line}"
            );
        }
    }
}
