#!/usr/bin/env python3
"""Regenerates src/check/exonyms.tsv, the Turkish -> English name table of the name check.

Three sources, each line tagged with the one it comes from:

* ``cldr-territory``: country and region names, Turkish vs English, from the Unicode CLDR
  data that Babel ships (``Locale('tr').territories`` against ``Locale('en').territories``).
* ``cldr-city``: exemplar cities of CLDR's time zones (``Locale(..).time_zones[zone]['city']``;
  English falls back to the root locale, then to the zone id, as CLDR itself does).
* ``curated-alias``: by hand, words that may trace to a source name without translating it
  (a capital for its country, a leader's first name).
* ``curated``: written here by hand: international bodies and their acronyms, Turkish parties
  and institutions, demonyms and language names (Türk -> Turkish, Çinli -> Chinese), capitals
  and cities CLDR has no zone for (Pekin -> Beijing), regions, seas, religions, events.

The output is deterministic for a given Babel version (the CLDR release is written into the
header): lines are sorted by source tag, then Turkish key, then English.

Usage: ``pip install babel==2.19.0 && python3 scripts/make_exonyms.py`` (from the repo root;
``--out PATH`` to write elsewhere).
"""

import argparse
import re
import sys
from pathlib import Path

import babel
from babel import Locale
from babel.localedata import load

# Characters a usable name may contain: letters (any script of Latin), spaces, hyphens, dots.
NAME_RE = re.compile(r"^[^\W\d_](?:[^\W\d_]|[ .\-])*$")

# CLDR region names that are not names a news text uses, or are ambiguous.
SKIP_TERRITORIES = {"ZZ", "QO", "EZ", "XA", "XB", "UN", "EU"}  # UN/EU are curated, with acronyms

# Turkish -> English, written by hand. "|" separates English alternatives.
CURATED = """
AB	EU|European Union
Avrupa Birliği	EU|European Union
BM	UN|United Nations
Birleşmiş Milletler	UN|United Nations
BM Güvenlik Konseyi	UN Security Council|Security Council
Güvenlik Konseyi	Security Council
NATO	NATO
Kuzey Atlantik Antlaşması Örgütü	NATO|North Atlantic Treaty Organization
Dünya Sağlık Örgütü	WHO|World Health Organization
DSÖ	WHO|World Health Organization
IMF	IMF|International Monetary Fund
Uluslararası Para Fonu	IMF|International Monetary Fund
Dünya Bankası	World Bank
Dünya Ticaret Örgütü	WTO|World Trade Organization
DTÖ	WTO|World Trade Organization
OECD	OECD
Ekonomik İşbirliği ve Kalkınma Örgütü	OECD|Organisation for Economic Co-operation and Development
AGİT	OSCE|Organization for Security and Co-operation in Europe
UNESCO	UNESCO
UNICEF	UNICEF
OPEC	OPEC
ASEAN	ASEAN
Interpol	Interpol
İnterpol	Interpol
Europol	Europol
Avrupa Konseyi	Council of Europe|European Council
Avrupa Komisyonu	European Commission|Commission|EU Commission
Avrupa Parlamentosu	European Parliament
Avrupa Merkez Bankası	ECB|European Central Bank
Avrupa İnsan Hakları Mahkemesi	ECHR|European Court of Human Rights
AİHM	ECHR|European Court of Human Rights
Uluslararası Ceza Mahkemesi	ICC|International Criminal Court
Uluslararası Adalet Divanı	ICJ|International Court of Justice
Uluslararası Olimpiyat Komitesi	IOC|International Olympic Committee
Uluslararası Af Örgütü	Amnesty International|Amnesty
Af Örgütü	Amnesty International|Amnesty
İnsan Hakları İzleme Örgütü	Human Rights Watch|HRW
Sınır Tanımayan Doktorlar	Doctors Without Borders|MSF
Kızılay	Red Crescent
Kızılhaç	Red Cross
Uluslararası Kızılhaç Komitesi	ICRC|International Committee of the Red Cross|Red Cross
İslam İşbirliği Teşkilatı	OIC|Organisation of Islamic Cooperation
Arap Birliği	Arab League
Körfez İşbirliği Konseyi	GCC|Gulf Cooperation Council
Afrika Birliği	African Union|AU
Şanghay İşbirliği Örgütü	SCO|Shanghai Cooperation Organisation
Fed	Fed|Federal Reserve
Merkez Bankası	Central Bank
TCMB	Central Bank|CBRT|CBT
Kremlin	Kremlin
Beyaz Saray	White House
Pentagon	Pentagon
Kongre	Congress
Senato	Senate
Temsilciler Meclisi	House of Representatives|House
Avam Kamarası	House of Commons|Commons
Lordlar Kamarası	House of Lords|Lords
Downing Sokağı	Downing Street
Vatikan	Vatican
Meclis	Parliament|Assembly|Meclis|Congress
TBMM	Parliament|Grand National Assembly|TBMM
Türkiye Büyük Millet Meclisi	Parliament|Grand National Assembly
AKP	AKP|AK Party|Justice and Development Party
AK Parti	AKP|AK Party|Justice and Development Party
Adalet ve Kalkınma Partisi	AKP|AK Party|Justice and Development Party
CHP	CHP|Republican People's Party
Cumhuriyet Halk Partisi	CHP|Republican People's Party
MHP	MHP|Nationalist Movement Party
Milliyetçi Hareket Partisi	MHP|Nationalist Movement Party
HDP	HDP|Peoples' Democratic Party
Halkların Demokratik Partisi	HDP|Peoples' Democratic Party
İYİ Parti	IYI Party|Good Party|IYI
PKK	PKK|Kurdistan Workers' Party
YPG	YPG|People's Protection Units
PYD	PYD|Democratic Union Party
SDG	SDF|Syrian Democratic Forces
IŞİD	ISIS|IS|ISIL|Islamic State|Daesh
IŞID	ISIS|IS|ISIL|Islamic State|Daesh
DEAŞ	ISIS|IS|ISIL|Islamic State|Daesh
DAEŞ	ISIS|IS|ISIL|Islamic State|Daesh
İslam Devleti	ISIS|IS|ISIL|Islamic State|Daesh
El Kaide	al-Qaeda|al Qaeda|Qaeda|al-Qaida
Taliban	Taliban
Hamas	Hamas
Hizbullah	Hezbollah|Hizbollah|Hizbullah
FETÖ	FETO|Gülen|Gulen
TSK	Turkish Armed Forces|TSK|Turkish military
MİT	MIT|National Intelligence Organization|intelligence
THY	Turkish Airlines|THY
Türk Hava Yolları	Turkish Airlines|THY
AA	Anadolu Agency|Anadolu|Anatolian|AA
Anadolu Ajansı	Anadolu Agency|Anadolu|AA
TRT	TRT
Reuters	Reuters
ABD	US|USA|United States|America|American|Americans|U.S.
Amerika	America|American|US|USA|United States
Amerikan	American|Americans|US|America
Amerikalı	American|Americans|US
Türk	Turkish|Turk|Turks|Turkey|Türkiye
Türkiye	Turkey|Türkiye|Turkish
Türkçe	Turkish
Rus	Russian|Russians|Russia
Rusça	Russian
Çinli	Chinese
Çince	Chinese|Mandarin
İngiliz	British|English|Briton|Britons|UK|Britain
İngilizce	English
İngiltere	England|Britain|UK|United Kingdom|British|English
Birleşik Krallık	UK|United Kingdom|Britain|British
Büyük Britanya	Great Britain|Britain|UK
Kürt	Kurdish|Kurd|Kurds|Kurdistan
Kürtçe	Kurdish
Arap	Arab|Arabic|Arabs|Arabian
Arapça	Arabic
Alman	German|Germans|Germany
Almanca	German
Fransız	French|France|Frenchman
Fransızca	French
İtalyan	Italian|Italians|Italy
İspanyol	Spanish|Spaniard|Spaniards|Spain
Portekizli	Portuguese
Yunan	Greek|Greeks|Greece
Yunanca	Greek
Rum	Greek Cypriot|Greek Cypriots|Greek|Orthodox
Ermeni	Armenian|Armenians|Armenia
Japon	Japanese|Japan
Japonca	Japanese
Koreli	Korean|Koreans
Hollandalı	Dutch|Netherlands
Hollanda	Netherlands|Holland|Dutch
İsrailli	Israeli|Israelis|Israel
Filistin	Palestine|Palestinian|Palestinians
Filistinli	Palestinian|Palestinians
Suriyeli	Syrian|Syrians
Iraklı	Iraqi|Iraqis
İranlı	Iranian|Iranians
Afgan	Afghan|Afghans|Afghanistan
Pakistanlı	Pakistani|Pakistanis
Hint	Indian|Indians|India|Hindu
Hintli	Indian|Indians
Mısırlı	Egyptian|Egyptians
Suudi	Saudi|Saudis
Suudi Arabistan	Saudi Arabia|Saudi
Katarlı	Qatari|Qataris
Ukraynalı	Ukrainian|Ukrainians
Polonyalı	Polish|Pole|Poles
İsveçli	Swedish|Swede|Swedes
Norveçli	Norwegian|Norwegians
Danimarkalı	Danish|Dane|Danes
Fin	Finnish|Finn|Finns|Finland
Macar	Hungarian|Hungarians|Hungary
Çek	Czech|Czechs
Avusturyalı	Austrian|Austrians
İsviçreli	Swiss
Belçikalı	Belgian|Belgians
Kanadalı	Canadian|Canadians
Meksikalı	Mexican|Mexicans
Brezilyalı	Brazilian|Brazilians
Arjantinli	Argentine|Argentinian|Argentinians
Avustralyalı	Australian|Australians
Azeri	Azerbaijani|Azeri|Azeris
Azerbaycanlı	Azerbaijani|Azeri
Gürcü	Georgian|Georgians|Georgia
Kazak	Kazakh|Kazakhs
Özbek	Uzbek|Uzbeks
Türkmen	Turkmen|Turkmens|Turkmenistan
Kırgız	Kyrgyz
Tatar	Tatar|Tatars
Çeçen	Chechen|Chechens|Chechnya
Boşnak	Bosnian|Bosniak|Bosniaks
Sırp	Serbian|Serb|Serbs
Hırvat	Croatian|Croat|Croats
Arnavut	Albanian|Albanians
Bulgar	Bulgarian|Bulgarians
Rumen	Romanian|Romanians
Kıbrıslı	Cypriot|Cypriots
Avrupalı	European|Europeans
Asyalı	Asian|Asians
Afrikalı	African|Africans
Latin Amerika	Latin America|Latin American
Müslüman	Muslim|Muslims|Islamic|Moslem|Islam
Hristiyan	Christian|Christians|Christianity
Hıristiyan	Christian|Christians|Christianity
Yahudi	Jewish|Jew|Jews|Judaism
Katolik	Catholic|Catholics|Catholicism
Ortodoks	Orthodox
Protestan	Protestant|Protestants
Sünni	Sunni|Sunnis
Şii	Shia|Shiite|Shiites|Shi'ite
Alevi	Alevi|Alevis|Alawite
İslam	Islam|Islamic|Muslim
İslami	Islamic
Budist	Buddhist|Buddhists
Allah	God|Allah
Tanrı	God|Lord|Deity
Kuran	Quran|Koran|Qur'an
Peygamber	Prophet
Ramazan	Ramadan|Ramazan
Kurban Bayramı	Eid al-Adha|Eid|Feast of Sacrifice|Feast of the Sacrifice|Kurban Bayrami
Noel	Christmas
Paskalya	Easter
Avrupa	Europe|European|EU
Asya	Asia|Asian
Afrika	Africa|African
Orta Doğu	Middle East|Mideast
Ortadoğu	Middle East|Mideast
Uzak Doğu	Far East
Orta Asya	Central Asia
Balkanlar	Balkans|Balkan
Kafkasya	Caucasus
Kafkas	Caucasus|Caucasian
Akdeniz	Mediterranean
Doğu Akdeniz	Eastern Mediterranean|East Med
Karadeniz	Black Sea
Ege	Aegean|Ege
Marmara	Marmara
Kızıldeniz	Red Sea
Basra Körfezi	Persian Gulf|Gulf
Körfez	Gulf
Hazar	Caspian
Baltık	Baltic
İskandinavya	Scandinavia|Scandinavian
Atlantik	Atlantic
Pasifik	Pacific
Batı	West|Western
Kuzey Irak	Northern Iraq|Iraqi Kurdistan
Kırım	Crimea|Crimean
Donbas	Donbas|Donbass
Gazze	Gaza
Batı Şeria	West Bank
Golan Tepeleri	Golan Heights|Golan
Kudüs	Jerusalem
Halep	Aleppo
İdlib	Idlib
Musul	Mosul
Rakka	Raqqa
Afrin	Afrin
Menbiç	Manbij
Kerkük	Kirkuk
Erbil	Erbil|Irbil
Şam	Damascus
Bağdat	Baghdad
Tahran	Tehran
Kahire	Cairo
Beyrut	Beirut
Riyad	Riyadh
Cidde	Jeddah|Jidda
Mekke	Mecca|Makkah
Medine	Medina
Abu Dabi	Abu Dhabi
Tiflis	Tbilisi
Bakü	Baku
Erivan	Yerevan
Atina	Athens
Selanik	Thessaloniki|Salonica
Sofya	Sofia
Bükreş	Bucharest
Belgrad	Belgrade
Saraybosna	Sarajevo
Üsküp	Skopje
Priştine	Pristina
Lefkoşa	Nicosia
Pekin	Beijing|Peking
Şanghay	Shanghai
Moskova	Moscow
Kiev	Kiev|Kyiv
Varşova	Warsaw
Viyana	Vienna
Prag	Prague
Budapeşte	Budapest
Londra	London
Paris	Paris
Brüksel	Brussels
Lahey	The Hague|Hague
La Haye	The Hague|Hague
Cenevre	Geneva
Zürih	Zurich
Bern	Bern|Berne
Strazburg	Strasbourg
Lüksemburg	Luxembourg
Roma	Rome|Roma|Roman|Romans
Milano	Milan
Napoli	Naples
Venedik	Venice
Floransa	Florence
Barselona	Barcelona
Sevilla	Seville
Lizbon	Lisbon
Marsilya	Marseille|Marseilles
Münih	Munich
Köln	Cologne
Kopenhag	Copenhagen
Stokholm	Stockholm
Kabil	Kabul
İslamabad	Islamabad
Karaçi	Karachi
Yeni Delhi	New Delhi|Delhi
Delhi	Delhi
Bombay	Mumbai|Bombay
Seul	Seoul
Pyongyang	Pyongyang
Tokyo	Tokyo
Singapur	Singapore
Cakarta	Jakarta
Vaşington	Washington
Washington	Washington
New York	New York
Sidney	Sydney
Meksiko	Mexico City
Havana	Havana
Cezayir	Algeria|Algiers
Trablus	Tripoli
Hartum	Khartoum
Kazablanka	Casablanca
Ankara	Ankara
İstanbul	Istanbul|Constantinople
İzmir	Izmir|Smyrna
Bursa	Bursa
Antalya	Antalya
Adana	Adana
Konya	Konya
Gaziantep	Gaziantep
Şanlıurfa	Sanliurfa|Urfa
Diyarbakır	Diyarbakir
Mersin	Mersin
Kayseri	Kayseri
Eskişehir	Eskisehir
Trabzon	Trabzon
Samsun	Samsun
Van	Van
Hatay	Hatay
Antakya	Antakya|Antioch
Erzurum	Erzurum
Malatya	Malatya
Kahramanmaraş	Kahramanmaras
Mardin	Mardin
Şırnak	Sirnak
Hakkari	Hakkari
Siirt	Siirt
Edirne	Edirne
Tekirdağ	Tekirdag
Çanakkale	Canakkale
Kocaeli	Kocaeli
İzmit	Izmit
Sakarya	Sakarya
Düzce	Duzce
Bolu	Bolu
Zonguldak	Zonguldak
Rize	Rize
Denizli	Denizli
Muğla	Mugla
Bodrum	Bodrum
Aydın	Aydin
Manisa	Manisa
Balıkesir	Balikesir
Elazığ	Elazig
Tunceli	Tunceli
Sivas	Sivas
Kapadokya	Cappadocia
Boğaziçi	Bosphorus|Bosporus|Bogazici
İstanbul Boğazı	Bosphorus|Bosporus
Çanakkale Boğazı	Dardanelles
Gelibolu	Gallipoli
Truva	Troy
Efes	Ephesus
Ayasofya	Hagia Sophia
Taksim	Taksim
Dünya Kupası	World Cup
Şampiyonlar Ligi	Champions League
Avrupa Ligi	Europa League
Süper Lig	Super League|Super Lig
Olimpiyat	Olympic|Olympics
Olimpiyatları	Olympic|Olympics|Games
Osmanlı	Ottoman|Ottomans
Bizans	Byzantine|Byzantium
Sovyet	Soviet|Soviets
Sovyetler Birliği	Soviet Union|USSR
Soğuk Savaş	Cold War
Dünya Savaşı	World War
Birinci Dünya Savaşı	First World War|World War I|WWI
İkinci Dünya Savaşı	Second World War|World War II|WWII
Kurtuluş Savaşı	War of Independence|Independence War
Demokrat	Democrat|Democrats|Democratic
Cumhuriyetçi	Republican|Republicans|GOP
Cumhuriyetçiler	Republicans|Republican|GOP
Demokratlar	Democrats|Democrat|Democratic
Brexit	Brexit
Büyük Britanya	GB|Team GB|British|Britons|UK|United Kingdom|England
Britanya	Britain|British|Briton|Britons|UK|GB|Great Britain|United Kingdom
Britanyalı	British|Briton|Britons
İskoçya	Scotland|Scottish|Scots
İskoç	Scottish|Scot|Scots|Scotsman|Glaswegian
Galler	Wales|Welsh
Gallı	Welsh
Kuzey İrlanda	Northern Ireland
İrlandalı	Irish
Trakya	Thrace
Anadolu	Anatolia|Anatolian
Güneydoğu Anadolu	Southeastern Anatolia|Southeast Anatolia|Southeastern Anatolian|Southeast
Doğu Anadolu	Eastern Anatolia
Boğaz	Bosphorus|Bosporus|Strait|Straits
Midilli	Lesbos|Lesvos|Mytilene
Membiç	Manbij
Zaho	Zakho
Şengal	Sinjar
Sincar	Sinjar
Yezidi	Yazidi|Yazidis|Yezidi
Ülker	Pleiades
Altı Uluslar	Six Nations
Altı Ulus	Six Nations
Kurban	Eid al-Adha|Eid|Adha|sacrifice|sacrificial
Bayram	Eid|holiday|festival|Bayram
Ramazan Bayramı	Eid al-Fitr|Eid|Ramadan Feast
tweet	Twitter|tweet
Fetullah Gülen	Fethullah Gulen|Gulen|Gülen
Gülen	Gulen|Gülen|Fethullah|Gulenist
FETÖ	Fethullah|Gülen|Gulen|Gulenist|FETO
Fransa	France|French
İspanya	Spain|Spanish|Spaniard|Spaniards
İsviçre	Switzerland|Swiss
Danimarka	Denmark|Danish|Dane|Danes
Polonya	Poland|Polish|Pole|Poles
Finlandiya	Finland|Finnish|Finn|Finns
İrlanda	Ireland|Irish
İzlanda	Iceland|Icelandic
Filipinler	Philippines|Filipino|Filipinos|Philippine
Galatasaray	Galatasaray
Fenerbahçe	Fenerbahce|Fenerbahçe
Beşiktaş	Besiktas|Beşiktaş
Dünya	World|Earth|world|earth|global|worldwide
Güneş Sistemi	Solar System|solar system
Samanyolu	Milky Way
Jüpiter	Jupiter
Satürn	Saturn
Venüs	Venus
Merkür	Mercury
Neptün	Neptune
Uranüs	Uranus
Plüton	Pluto
Orta Çağ	Middle Ages|medieval|Medieval
Ortaçağ	Middle Ages|medieval|Medieval
Taş Devri	Stone Age
Buz Devri	Ice Age
Tunç Çağı	Bronze Age
Bronz Çağı	Bronze Age
Demir Çağı	Iron Age
Sanayi Devrimi	Industrial Revolution
Fransız Devrimi	French Revolution
Aydınlanma	Enlightenment
Rönesans	Renaissance
Nil	Nile
Tuna	Danube
Ren	Rhine
Fırat	Euphrates
Dicle	Tigris
Himalayalar	Himalayas|Himalaya|Himalayan
Alpler	Alps|Alpine
And Dağları	Andes
Sahra	Sahara
Karayipler	Caribbean
Karayip	Caribbean
Arktik	Arctic
Kuzey Kutbu	North Pole|Arctic
Güney Kutbu	South Pole|Antarctic
Hint Okyanusu	Indian Ocean
Atlas Okyanusu	Atlantic|Atlantic Ocean
Büyük Okyanus	Pacific|Pacific Ocean
Kaliforniya	California|Californian|Calif
Teksas	Texas|Texan
Mississipi	Mississippi
Latince	Latin
İspanyolca	Spanish
İtalyanca	Italian
Portekizce	Portuguese
Yunanca	Greek
İbranice	Hebrew
Farsça	Persian|Farsi
Korece	Korean
Hintçe	Hindi
Felemenkçe	Dutch
Hindu	Hindu|Hindus|Hinduism
Hinduizm	Hinduism|Hindu
Budizm	Buddhism|Buddhist
İncil	Bible|Gospel|Gospels
Kutsal Kitap	Bible|Holy Book|Scripture|Scriptures
Tevrat	Torah
Vatikan	Vatican|Holy See
MÖ	BC|B.C.|BCE
MS	AD|A.D.|CE
GSYH	GDP|gross domestic product
GSYİH	GDP|gross domestic product
GSMH	GNP|gross national product
TÜFE	CPI|consumer price|consumer prices|consumer price index|inflation
ÜFE	PPI|producer price|producer prices|producer price index
KDV	VAT|value added tax
ÖTV	SCT|special consumption tax
Ar Ge	R&D|research and development|research
AVM	mall|shopping mall|shopping centre|shopping center
SSCB	USSR|Soviet Union|Soviet
TÜİK	TurkStat|TUIK|Turkish Statistical Institute|statistics
YSK	YSK|Supreme Election Council|election board
HSK	HSK|Council of Judges and Prosecutors
HSYK	HSYK|Supreme Board of Judges and Prosecutors
SGK	SGK|Social Security Institution|social security
BDDK	BDDK|BRSA|Banking Regulation and Supervision Agency
SPK	SPK|CMB|Capital Markets Board
EPDK	EPDK|EMRA|Energy Market Regulatory Authority
RTÜK	RTÜK|RTUK|Radio and Television Supreme Council
YÖK	YÖK|YOK|Council of Higher Education|Higher Education Council
ÖSYM	ÖSYM|OSYM|Measuring, Selection and Placement Center
MEB	MEB|Ministry of National Education|Education Ministry
AFAD	AFAD|Disaster and Emergency Management
TOKİ	TOKİ|TOKI|Housing Development Administration
KKTC	TRNC|Turkish Republic of Northern Cyprus|Northern Cyprus
DİB	Diyanet|Religious Affairs|Presidency of Religious Affairs
Diyanet	Diyanet|Religious Affairs
YAŞ	YAŞ|YAS|Supreme Military Council
IKBY	KRG|Kurdistan Regional Government|Kurdish Regional Government
AİHS	ECHR|European Convention on Human Rights
TTB	TTB|Turkish Medical Association
TOBB	TOBB|Union of Chambers and Commodity Exchanges
TÜSİAD	TÜSİAD|TUSIAD
İBB	IMM|Istanbul Metropolitan Municipality|İBB|IBB
ABB	ABB|Ankara Metropolitan Municipality
DHA	DHA|Doğan News Agency|Dogan News Agency
İHA	İHA|IHA|Ihlas News Agency
BAE	UAE|United Arab Emirates
İsa	Jesus|Christ
Mesih	Messiah|Christ
Meryem	Mary|Mariam|Maryam|Marian|Virgin
Musa	Moses|Musa
İbrahim	Abraham|Ibrahim
İshak	Isaac|Ishak
İsmail	Ishmael|Ismail
Yakup	Jacob|Yakup|Yaqub
Yusuf	Joseph|Yusuf
Süleyman	Solomon|Suleiman|Süleyman|Suleyman
Davut	David|Davut|Dawud
Nuh	Noah|Nuh
Adem	Adam|Adem
Havva	Eve|Havva
Harun	Aaron|Harun
Yunus	Jonah|Yunus
Eyüp	Job|Eyüp|Eyup
Yahya	John|Yahya
Firavun	Pharaoh|Pharaohs
Sfenks	Sphinx
Deccal	Antichrist|Dajjal
Mehdi	Mahdi|Mehdi
Hristiyanlık	Christianity|Christian
Vehhabi	Wahhabi|Wahhabis|Wahhabism
Selefi	Salafi|Salafis|Salafist
Kur'an	Quran|Koran|Qur'an
Cizvit	Jesuit|Jesuits
Haçlı	Crusade|Crusades|Crusader|Crusaders
Tapınak Şövalyeleri	Templars|Knights Templar
Güneş	Sun|sun|solar
Ay	Moon|moon|lunar
Yerküre	Earth|earth|globe
Selçuklu	Seljuk|Seljuks|Seljuq
Kretase	Cretaceous
Jura	Jurassic|Jura
İstiklal Harbi	War of Independence|Independence War
İstiklal Marşı	National Anthem|Independence March
Yeşilçam	Yeşilçam|Yesilcam|Turkish cinema|Turkish film
Siyah Beyazlı	Beşiktaş|Black-and-White|Black and White|Black-White|Black-and-Whites
Kara Kartal	Beşiktaş|Black Eagles|Black Eagle
Kartal	Kartal|Beşiktaş|Eagles|Eagle
Sarı Kırmızılı	Galatasaray|Yellow-Red|Yellow and Red
Cimbom	Galatasaray|Cimbom
Sarı Lacivertli	Fenerbahçe|Yellow-Navy|Yellow-Navy Blue|Yellow and Navy
Kanarya	Fenerbahçe|Canaries|Canary
Bordo Mavili	Trabzonspor|Claret-Blue|Burgundy-Blue|Claret and Blue
Ay Yıldızlı	Turkey|Turkish|national team|Crescent-Star|Crescent and Star
"""

# Turkish -> English words that trace to a name without translating it: the capital for its
# country ("Moscow's reaction" for "Rusya'nın tepkisi"), a leader's first name. Tagged
# ``curated-alias``: the check lets an English word trace to them, but never takes them as the
# translation of a source name.
ALIASES = """
Erdoğan	Erdogan|Recep|Tayyip
Tayyip	Recep|Erdogan
Putin	Putin|Vladimir
Trump	Trump|Donald
Obama	Obama|Barack
Clinton	Clinton|Hillary|Bill
Merkel	Merkel|Angela
Esad	Assad|Bashar|al-Assad
Beşar Esad	Bashar al-Assad|Assad
Şi Cinping	Xi Jinping|Xi
Şi	Xi
ABD	Washington
Rusya	Moscow|Kremlin
Çin	Beijing
Türkiye	Ankara
İngiltere	London
Fransa	Paris
Almanya	Berlin
İran	Tehran
Suriye	Damascus
Irak	Baghdad
İsrail	Israeli|Israelis|Tel Aviv
Japonya	Tokyo
lira	Turkish|Lira
TL	Turkish|Lira
"""


def cldr_version():
    """The CLDR release Babel was built from, when Babel exposes it."""
    try:
        from babel.core import get_cldr_version

        return get_cldr_version()
    except ImportError:
        return "unknown"


def usable(name):
    return bool(name) and NAME_RE.match(name) is not None and "ÖİB" not in name


def cap(name):
    return name[:1].upper() + name[1:]


def territories():
    tr, en = Locale("tr").territories, Locale("en").territories
    for code in sorted(tr):
        if code in SKIP_TERRITORIES or code not in en:
            continue
        t, e = tr[code], cap(en[code])
        if usable(t) and usable(e):
            yield t, e, "cldr-territory"


def english_city(zone, en_zones, root_zones):
    city = en_zones.get(zone, {}).get("city") or root_zones.get(zone, {}).get("city")
    return city or zone.rsplit("/", 1)[-1].replace("_", " ")


def cities():
    tr_zones = Locale("tr").time_zones
    en_zones, root_zones = Locale("en").time_zones, load("root")["time_zones"]
    for zone in sorted(tr_zones):
        if zone.startswith("Etc/"):
            continue
        t = tr_zones[zone].get("city")
        e = english_city(zone, en_zones, root_zones)
        if t and usable(t) and usable(e):
            yield t, e, "cldr-city"


def curated():
    for line in CURATED.strip().splitlines():
        t, e = line.split("\t")
        yield t, e, "curated"
    for line in ALIASES.strip().splitlines():
        t, e = line.split("\t")
        yield t, e, "curated-alias"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "src/check/exonyms.tsv"))
    args = ap.parse_args()
    rows = sorted(set(territories()) | set(cities()) | set(curated()), key=lambda r: (r[2], r[0], r[1]))
    header = [
        "# Turkish -> English names for the name check (src/check/names.rs).",
        "# Generated by scripts/make_exonyms.py; edit the script, not this file.",
        f"# Sources: cldr-territory and cldr-city from Unicode CLDR {cldr_version()} via Babel "
        f"{babel.__version__} (territory names; time-zone exemplar cities); curated and curated-alias: by hand.",
        "# Columns: turkish<TAB>english[|alternative...]<TAB>source. A key may appear on several lines;",
        "# curated-alias lines only let English words trace to a name (Rusya -> Moscow), never translate it.",
    ]
    text = "\n".join(header + ["\t".join(r) for r in rows]) + "\n"
    Path(args.out).write_text(text, encoding="utf-8")
    print(f"{len(rows)} entries -> {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
