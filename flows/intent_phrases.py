"""Vocabulary and weighted phrase rules behind :mod:`flows.intents` (data only, no logic).

Text is normalised in three steps before the rules run: ``PHRASES`` rewrites multi-word
expressions in the raw lowercased text, ``TOKEN_MAP`` rewrites single tokens (Indonesian
abbreviations, slang, English words) to one canonical, mostly Indonesian, vocabulary, and
typos are corrected against the words the rules use. ``RULES`` are written in that canonical
vocabulary. A pattern is one or more parts joined by ``+``; every part must occur (a part of
several words must occur as a contiguous phrase). A matching pattern adds its weight, which may
be negative, to its intent.
"""

from __future__ import annotations


def _words(text: str) -> list[str]:
    return text.split()


def _group(canonical: str, words: str) -> dict[str, str]:
    return dict.fromkeys(_words(words), canonical)


PHRASES: tuple[tuple[str, str], ...] = (
    ("sign up", "daftar"), ("sign in", "login"), ("log in", "login"), ("log out", "keluar"),
    ("sign out", "keluar"), ("log off", "keluar"), ("how much", "berapa"), ("how many", "berapa"),
    ("never mind", "batal"), ("forget it", "batal"), ("forget about it", "batal"),
    ("thank you", "makasih"), ("terima kasih", "makasih"), ("trima kasih", "makasih"),
    ("customer service", "cs"), ("customer care", "cs"), ("layanan pelanggan", "cs"),
    ("call center", "callcenter"),
    ("call centre", "callcenter"), ("gone up", "naik"), ("laid off", "phk"), ("job loss", "jkp"),
    ("lost my job", "jkp"), ("old age", "jht"), ("jaminan hari tua", "jht"), ("hari tua", "jht"),
    ("jaminan pensiun", "pensiun"), ("jaminan kematian", "jkm"),
    ("jaminan kecelakaan kerja", "jkk"), ("kecelakaan kerja", "jkk"), ("work accident", "jkk"),
    ("jaminan kehilangan pekerjaan", "jkp"), ("kehilangan pekerjaan", "jkp"),
    ("kehilangan kerja", "jkp"), ("what is my", "berapa saya"), ("whats my", "berapa saya"),
    ("what is", "apa itu"), ("whats", "apa itu"), ("no kartu", "nomor kartu"),
    ("no kpj", "nomor kpj"), ("no hp", "nomor hp"), ("no telp", "nomor telepon"),
    ("no telepon", "nomor telepon"), ("no wa", "nomor wa"), ("no cs", "nomor cs"),
    ("no peserta", "nomor peserta"), ("kata sandi", "password"), ("play store", "download"),
    ("force close", "error"), ("keeps crashing", "error"), ("jamsostek mobile", "jmo"),
    ("bpjstk mobile", "jmo"), ("di mana", "dimana"), ("hapusdata", "hapus data"),
    ("kacab", "kantor cabang"), ("opening hours", "jam buka"), ("what can", "apa bisa"),
    ("how to use", "cara pakai"), ("how does", "bagaimana"), ("bpjs tk", "bpjs"),
    ("bpjs ketenagakerjaan", "bpjs"), ("bp jamsostek", "bpjs"), ("hati hati", "hatihati"),
    ("pemutusan hubungan kerja", "phk"), ("cash out", "cair"), ("mengundurkan diri", "resign"),
    ("berhenti kerja", "resign"), ("keluar kerja", "resign"), ("keluar dari kerjaan", "resign"),
    ("keluar dari perusahaan", "resign"), ("real person", "orang asli"), ("real human", "petugas"),
    ("lepas tautan", "putus"), ("log me out", "keluar"), ("sign me out", "keluar"),
    ("how are you", "apa kabar"), ("lose my job", "jkp"), ("lose job", "jkp"), ("lost job", "jkp"),
    ("losing my job", "jkp"), ("datasaya", "data saya"), ("mydata", "saya data"),
    ("bpjs kesehatan", "jkn"), ("bpjs kes", "jkn"), ("kartu indonesia sehat", "jkn"),
    ("jaminan kesehatan nasional", "jkn"), ("mobile jkn", "jkn"), ("jkn mobile", "jkn"),
    ("health insurance", "jkn"), ("jkn kis", "jkn"),
)

CANON_PHRASES: tuple[tuple[str, str], ...] = (
    ("kantor saya", "perusahaan"), ("tempat kerja", "perusahaan"),
    ("tempat saya kerja", "perusahaan"),
)
"""Rewrites applied after token normalisation, on canonical words."""

TOKEN_MAP: dict[str, str] = {
    **_group("", "dong deh sih nih ya yah yaa kak kakak ka gan agan bro sis mas mbak mba pak "
             "bu bapak ibu bang om min mimin please pls plz mohon the a an to of is are am be "
             "been do does did there so very much lot kindly"),
    **_group("halo", "hai hi hallo halo helo hello hey hei hy hay hola woi oi p"),
    **_group("salam", "assalamualaikum asalamualaikum assalamu alaikum askum salam "
             "assalamualaikom waalaikumsalam samlekom"),
    **_group("pagi", "pagi morning"), **_group("siang", "siang afternoon"),
    **_group("malam", "malam evening night"), **_group("permisi", "permisi punten"),
    **_group("makasih", "makasih makasi mksh mks maksih trims trimakasih terimakasih thx "
             "thanks thank thankyou tq ty tks tengkyu tenkyu nuwun suwun nuhun"),
    **_group("tidak", "tdk gak ga gk g nggak ngga ngak enggak engga tak ndak nda kagak no not "
             "dont doesnt didnt isnt hasnt havent wont cant cannot never aint"),
    **_group("berapa", "brp brapa brpa berapakah"),
    **_group("bagaimana", "gmn gmna gimana bgmn gimna gmana how"), "what": "apa",
    **_group("kenapa", "kenapa knp napa mengapa kok koq why"), "when": "kapan",
    **_group("dimana", "dimana dmn where mana"), "which": "",
    **_group("saya", "sy saya aku gue gw gua ane sya my me i mine ku q"),
    **_group("kamu", "you u kamu anda km lu lo kau your"),
    **_group("sudah", "udh udah sdh dah uda telah already"),
    **_group("belum", "blm blom belom lum yet"), **_group("bulan", "bln month monthly"),
    **_group("tahun", "year thn th yearly"),
    **_group("sekarang", "skrg skg skrng now current currently terkini"),
    **_group("lalu", "kemarin kmrn kemaren lalu previous"), "last": "terakhir",
    "yg": "yang", **_group("dengan", "dgn dg sm ama with"), **_group("karena", "krn karna"),
    **_group("untuk", "utk tuk untk for buat"), **_group("tapi", "tp tpi but"),
    **_group("saja", "aja ajah only just"), **_group("bisa", "can could bs isa"),
    **_group("mau", "want wanna mo pengen pengin ingin pgn need butuh like"),
    **_group("lihat", "liat see show view"), **_group("cek", "check cekin ngecek"),
    **_group("bpjs", "jamsostek bpjamsostek bpjstk bpjsketenagakerjaan"),
    "ketenagakerjaan": "bpjs",
    **_group("saldo", "saldo sldo sld balance balances savings tabungan"),
    **_group("uang", "uang duit dana money"),
    **_group("iuran", "iuran contribution contributions contribute contributes kontribusi "
             "setoran premi"),
    **_group("bayar", "bayar pay paid pays paying payment payments setor lunas"),
    **_group("riwayat", "riwayat history histori mutasi rincian detail rekap"),
    **_group("perusahaan", "perusahaan employer company pt pabrik hrd majikan bos boss"),
    **_group("masuk", "masuk posted credited received"),
    **_group("daftar", "daftar register registrasi regis registration daftarin signup "
             "enroll"),
    **_group("hubung", "hubungkan hubungin sambungkan sambungin sambung connect tautkan kaitkan"),
    **_group("hubungi", "hubungi contact kontak"),
    **_group("akun", "akun account acc membership keanggotaan kepesertaan"),
    **_group("kartu", "kartu card"), "member": "peserta",
    **_group("petugas", "petugas agent agen operator staf staff officer human manusia"),
    **_group("bicara", "bicara ngomong ngobrol omong talk speak chat ngechat"),
    **_group("komplain", "komplain complain complaint komplen ngadu mengadu keluhan aduan "
             "pengaduan lapor report protes protest"),
    **_group("bantuan", "help bantuan helpdesk"), **_group("bantu", "bantu bantuin"),
    **_group("menu", "menu options opsi pilihan commands perintah fitur features feature"),
    **_group("mulai", "start mulai"), **_group("layanan", "layanan services service"),
    **_group("bahasa", "bahasa bhs language lang"),
    **_group("inggris", "inggris ingris english eng"), "indonesian": "bahasa indonesia",
    **_group("ganti", "ganti ubah switch change tukar pindah"),
    **_group("batal", "batal cancel cancelled pembatalan abort nevermind"),
    **_group("stop", "stop berhenti udahan sudahan quit"),
    **_group("keluar", "keluar logout logoff signout exit"),
    **_group("putus", "putus unlink disconnect lepas lepaskan cabut"),
    **_group("hapus", "hapus hps delete erase remove wipe hapusin penghapusan"),
    "information": "data", "informasi": "info", "personal": "pribadi",
    **_group("simpan", "simpan disimpan menyimpan tersimpan store stored stores keep keeps kept"),
    **_group("akses", "akses access"),
    **_group("klaim", "klaim claim claims klem"),
    **_group("cair", "cair pencarian withdraw withdrawal withdrawing cashout"),
    **_group("ambil", "ambil take tarik narik penarikan"),
    **_group("syarat", "syarat persyaratan requirement requirements"),
    **_group("dokumen", "dokumen berkas document documents"), "resigned": "resign",
    **_group("program", "program programs produk"),
    **_group("manfaat", "manfaat benefit benefits tunjangan"),
    **_group("beda", "beda perbedaan difference different vs"),
    **_group("tanggung", "tanggung cover covers coverage cakupan"),
    **_group("jkk", "jkk kecelakaan accident"), **_group("jkm", "jkm kematian death"),
    **_group("pensiun", "pensiun pension jp"),
    **_group("jkp", "jkp unemployment unemployed pengangguran jobless"),
    **_group("phk", "phk dipecat pecat layoff fired"),
    **_group("persen", "persen percent persentase prosen"),
    **_group("potong", "potong potongan deduct deducted deduction deductions"),
    **_group("gaji", "gaji salary wage wages upah"),
    **_group("tunggak", "tunggak nunggak nungak menunggak tunggakan arrears"),
    **_group("minimarket", "minimarket indomaret alfamart alfamidi"),
    **_group("batas", "batas deadline tenggat"), "due": "jatuh tempo",
    **_group("sekaligus", "sekaligus advance"),
    **_group("telat", "telat terlambat late overdue"),
    **_group("tarif", "tarif rate rates besaran besarnya"),
    **_group("naik", "naik bertambah nambah tambah increase increasing increased grow growing"),
    **_group("update", "update updated updating diperbarui berubah perubahan changed"),
    "still": "masih", **_group("nol", "nol zero kosong empty 0"), "same": "sama",
    **_group("aplikasi", "aplikasi app apps apk application aplikasinya"),
    **_group("error", "error eror crash crashing bug lemot lambat lag hang"),
    **_group("download", "download unduh install instal playstore"),
    **_group("lupa", "lupa forgot forget forgotten"), **_group("ingat", "ingat inget remember"),
    **_group("password", "password pass sandi pw pin"), "e": "", "mail": "email",
    **_group("reset", "reset recover recovery pulihkan pemulihan"),
    **_group("nomor", "nomor nomer nmr number num"),
    **_group("telepon", "telp telpon telepon phone tlp telefon call nelpon"), "lost": "hilang",
    **_group("kantor", "kantor office offices"), **_group("cabang", "cabang branch"),
    **_group("alamat", "alamat address lokasi location"),
    **_group("terdekat", "terdekat nearest dekat near nearby"), "175": "callcenter",
    **_group("callcenter", "callcenter hotline"), **_group("whatsapp", "whatsapp wa"),
    **_group("jam", "jam hours"), **_group("buka", "buka open"),
    **_group("penipuan", "penipuan tipu menipu ditipu scam scammer fraud penipu modus phishing"),
    **_group("palsu", "palsu hoax hoaks fake bodong"),
    **_group("aman", "aman safe secure security keamanan"), **_group("resmi", "resmi official"),
    **_group("kode", "kode code"), **_group("transfer", "transfer tf"),
    **_group("ngaku", "ngaku mengaku ngakunya claiming pretending"),
    **_group("curiga", "curiga suspicious"), "work": "kerja",
    **_group("turun", "turun berkurang kurang decrease decreased"),
    **_group("sesuai", "sesuai match"), **_group("minta", "minta meminta asking ask"),
    **_group("orang", "orang person people someone somebody"), "type": "ketik",
    **_group("pakai", "pakai pake memakai gunakan menggunakan use using"),
    **_group("hitung", "hitung hitungan perhitungan menghitung calculate calculation kalkulasi"),
    **_group("terkunci", "terkunci kunci locked blokir diblokir terblokir blocked"),
    **_group("jkn", "jkn kis faskes puskesmas askes bpjskes bpjskesehatan kesehatan"),
    # Javanese (ngoko and krama) and Sundanese words for the bot's topics.
    **_group("sekarang", "saiki sakniki saniki ayeuna"),
    **_group("berapa", "piro pinten sabaraha sabrahaa"),
    **_group("bagaimana", "piye pripun kepriye kumaha kumahanya"),
    **_group("cara", "carane caranipun carana"),
    **_group("ambil", "jupuk njupuk mendet mundhut nyandak nyokot"),
    **_group("cair", "nyairke nyairkeun dicairke dicairkeun ncairke cairke cairkeun"),
    **_group("belum", "durung dereng drung acan tacan"),
    **_group("sudah", "wis uwis wes sampun tos parantos atos"),
    **_group("tidak", "ora mboten boten teu henteu hente"), "rasido": "tidak jadi",
    "sido": "jadi", **_group("mau", "badhe arep hoyong bade"),
    **_group("saya", "kulo kula abdi dewek"), **_group("kamu", "sampeyan panjenengan anjeun"),
    **_group("apa", "opo naon"), **_group("masuk", "mlebu lebet asup"),
    **_group("lihat", "ningali tingali ndelok delok ndeleng mirsani"),
    **_group("uang", "duwit artos"), **_group("kerja", "gawe nyambut damel"),
    **_group("hapus", "busak mupus"), **_group("lupa", "lali hilap poho"),
    **_group("maaf", "ngapunten hapunten"), **_group("tolong", "tulung tulungi"),
    **_group("makasih", "matur hatur"), **_group("", "lur dulur mangga wios sedoyo"),
    **_group("minta", "nyuwun nyuhunkeun"), **_group("bisa", "iso saged tiasa"),
}

COMMON_WORDS: frozenset[str] = frozenset(_words(
    "ada adalah agar akan akhir aku apa apakah atau bagi baik banyak baru bawah beli benar "
    "besar besok biasa bikin bila bisa boleh buka bukan cara cari cepat coba cuma dalam dan "
    "dapat dari datang dia dulu harga hari harus hanya hidup ini itu jadi jalan jangan jika "
    "juga kalau kali kami kan kapan kasih kata ke kecil kenal kerja kita kemana lagi lain lama "
    "lapar lebih maaf makan mana masa masalah masih minta mungkin nama nanti oke okeh okay ok "
    "pakai pake pada panjang paling pas pernah pergi punya rumah salah sama sampai sangat satu "
    "sebagian sebelum sedang sedikit selamat semua sendiri sering setelah setiap siapa sini "
    "situ suka sudah supaya tadi tahu tanya tapi tempat terus hujan panas angin minum tidur "
    "mobil motor kota desa anak istri suami ayah teman sayang cinta senang sedih marah lucu "
    "bagus jelek mahal murah tinggi rendah pendek enak pedas manis mie ayam ikan sapi kopi teh "
    "susu roti buah sayur air api tanah laut gunung sungai pantai pohon bunga anjing burung "
    "sekolah kuliah kampus guru murid dokter sakit obat pasar toko warung belanja jual ongkir "
    "paket kirim terima berita film lagu musik nonton laptop komputer internet wifi kuota "
    "sinyal bensin tol bus hotel liburan wisata banjir gempa politik menteri pemilu agama "
    "masjid gereja puasa lebaran natal pesta nikah hamil bayi pinjol pinjaman hutang utang "
    "kredit bank atm rekening saham crypto bitcoin dolar rupiah perlu tiap tolong tunggu turun "
    "urus usah waktu yang jadwal kereta cuaca resep rendang nasi goreng emas bola skor "
    "presiden tiket pesawat kucing game main pulsa token listrik lorem ipsum haha hehe wkwk "
    "mantap sip siap info data nik kpj jht jmo bot proses online lewat hilang berapa beneran "
    "asli utama kembali saja indonesia kabar rutin the this that these those have has had get "
    "got give here what who with from about will would should how are was were not please "
    "hello thanks like want need it its they them we our us he she his her and or if then than "
    "too also any some all"
))
"""Everyday words kept as they are: never typo-corrected into a keyword."""

# Weights: a clear keyword of an intent scores 2-3.5, context words add 0.5-1.5, greetings and
# thanks stay near 1.3 so that any request in the same message wins over them.
RULES: dict[str, tuple[tuple[str, float], ...]] = {
    "check_balance": (
        ("saldo", 2.0), ("cek saldo", 1.0), ("lihat saldo", 0.8), ("berapa+saldo", 0.5),
        ("berapa+jht", 1.6), ("uang+jht", 1.6), ("cek+jht", 1.6), ("lihat+jht", 1.2),
        ("jumlah+jht", 1.2), ("berapa+uang", 1.2), ("saldo+sekarang", 0.3),
        ("sisa+jht", 1.6),
    ),
    "history": (
        ("riwayat", 2.5), ("iuran", 1.0), ("iuran+masuk", 1.5), ("iuran+sudah", 0.8),
        ("iuran+bulan", 0.6), ("iuran+tahun", 0.8), ("sudah+bayar", 1.5),
        ("perusahaan+bayar", 2.0), ("perusahaan+iuran", 1.0), ("bayar+bulan", 0.8),
        ("kapan+terakhir", 1.0), ("terakhir+iuran", 1.0), ("terakhir+bayar", 1.0),
        ("daftar iuran", 2.5), ("bayar+iuran", 0.8), ("cek iuran", 1.0), ("bayar", 0.5),
        ("bayar+tahun", 1.0), ("lihat+bayar", 1.0),
    ),
    "register": (
        ("daftar", 2.0), ("daftar saldo", 3.0), ("cara+daftar", 1.0), ("hubung", 1.0),
        ("hubung+akun", 2.5), ("hubung+kpj", 2.5), ("hubung+kartu", 2.5),
        ("hubung+bpjs", 1.5), ("link+akun", 2.5), ("link+kpj", 2.5), ("link+kartu", 2.5),
        ("verifikasi", 2.0), ("belum+hubung", 1.5), ("daftar iuran", -2.5),
        ("belum+akun", 1.5), ("punya+akun", 1.0), ("hubungi+akun", 2.5),
    ),
    "handoff": (
        ("petugas", 2.5), ("cs", 2.5), ("komplain", 2.5), ("orang asli", 2.5),
        ("orang beneran", 2.5), ("admin", 0.5), ("admin+beneran", 2.0), ("admin+bicara", 2.0),
        ("admin+hubung", 2.0), ("admin+hubungi", 2.0), ("bicara", 0.6), ("hubung+petugas", 1.0),
        ("hubung+cs", 1.0), ("hubungi+cs", 1.0), ("hubungi+petugas", 1.0), ("salah", 0.8),
        ("bukan bot", 2.5), ("bicara+orang", 2.0), ("ngaku", -2.0),
    ),
    "help": (
        ("bantuan", 2.5), ("bantu", 1.5), ("menu", 2.5), ("mulai", 1.2), ("bisa+apa", 1.0),
        ("apa+bisa+kamu", 1.5), ("apa saja+bisa", 1.0), ("cara pakai", 1.5), ("pakai+bot", 1.0),
        ("bagaimana+bot", 0.8), ("bot+kerja", 1.5), ("bingung", 2.0), ("ngapain", 1.0),
        ("ketik+apa", 2.0), ("layanan", 1.5), ("apa itu+bot", 1.5),
    ),
    "change_language": (("bahasa", 2.5), ("inggris", 2.5), ("bahasa+ganti", 0.5)),
    "greeting": (
        ("halo", 1.3), ("salam", 1.3), ("pagi", 1.2), ("siang", 1.2), ("sore", 1.2),
        ("malam", 1.2), ("selamat", 0.3), ("permisi", 1.2), ("apa kabar", 1.3),
    ),
    "thanks": (("makasih", 1.5), ("makasih+bantuan", 2.0), ("makasih+bantu", 2.0)),
    "cancel": (
        ("batal", 3.0), ("tidak jadi", 3.5), ("stop", 2.0), ("tidak usah", 2.0),
        ("cukup", 1.0), ("tidak perlu", 2.0),
    ),
    "logout": (
        ("keluar", 2.5), ("putus", 2.5), ("keluar+akun", 0.5), ("putus+akun", 1.0),
        ("putus+hubung", 2.0),
    ),
    "delete_data": (
        ("hapus", 3.0), ("hapus+data", 1.5), ("hapus+akun", 1.0), ("hapus+pribadi", 1.0),
    ),
    "my_data": (
        ("data+saya", 1.5), ("data+simpan", 2.0), ("simpan", 1.0), ("data+apa", 1.0),
        ("lihat+data", 1.5), ("cek+data", 1.5), ("akses+data", 2.0), ("simpan+nik", 1.0),
        ("hapus", -3.0), ("salah", -2.0), ("aman", -2.0), ("ngaku", -2.0),
    ),
    "faq.claim_jht": (
        ("klaim", 2.0), ("cair", 2.5), ("klaim+jht", 1.0), ("cair+jht", 1.0),
        ("ambil+jht", 3.0), ("syarat", 1.0), ("syarat+jht", 1.5), ("dokumen", 1.0),
        ("resign", 1.5), ("resign+jht", 1.5), ("paklaring", 2.0), ("persen+rumah", 1.5),
        ("30 persen", 1.5), ("10 persen", 1.5), ("sebagian", 1.0), ("klaim+jmo", 1.0),
    ),
    "faq.programs": (
        ("program", 2.0), ("jkk", 2.2), ("jkm", 2.2), ("pensiun", 2.0), ("manfaat", 1.5),
        ("beda", 1.5), ("tanggung", 1.5), ("apa itu+jht", 2.5), ("jht+itu apa", 2.5),
        ("jaminan", 0.8), ("apa itu", 0.5), ("itu apa", 0.5), ("manfaat+bpjs", 1.0),
        ("beda+jkn", 1.5),
        ("tanggung+bpjs", 1.0), ("jaminan+apa", 1.0), ("apa itu+bpjs", 1.5),
    ),
    "faq.contribution_rates": (
        ("persen", 2.5), ("iuran+berapa", 2.5), ("potong", 1.5), ("potong+gaji", 1.0),
        ("potong+berapa", 1.0), ("tarif", 2.0), ("tarif+iuran", 1.0), ("tarif+berapa", 1.0),
        ("berapa+bayar", 2.5), ("gaji+berapa", 1.0), ("iuran+bpu", 1.0), ("hitung", 1.0),
        ("hitung+iuran", 2.0),
    ),
    "faq.balance_not_updated": (
        ("saldo+tidak+naik", 4.0), ("saldo+belum+naik", 4.0), ("saldo+tidak+update", 4.0),
        ("saldo+belum+update", 4.0), ("saldo+masih+sama", 3.5), ("saldo+masih+nol", 3.5),
        ("saldo+masih", 1.5), ("saldo+nol", 2.0), ("saldo+kenapa", 1.0), ("padahal", 1.0),
        ("tidak+naik", 2.0), ("belum+update", 1.5), ("tidak+update", 1.5),
        ("saldo+tidak+masuk", 3.0), ("saldo+belum+masuk", 3.0), ("potong+saldo", 1.5),
        ("saldo+turun", 3.5), ("saldo+tidak+sesuai", 3.5),
    ),
    "faq.jmo_app": (
        ("jmo", 2.5), ("aplikasi", 1.5), ("jmo+aplikasi", 0.5), ("error", 1.0),
        ("jmo+error", 1.0), ("download", 1.0), ("jmo+login", 0.5), ("aplikasi+bpjs", 1.0),
        ("jmo+tidak+bisa", 1.0), ("jmo+daftar", 1.0),
    ),
    "faq.forgot_account": (
        ("lupa", 3.0), ("tidak+ingat", 2.5), ("password", 1.5), ("reset", 1.5),
        ("reset+password", 1.5), ("kartu+hilang", 2.5), ("reset+akun", 1.5),
        ("lupa+email", 1.5), ("lupa+akun", 1.0), ("lupa+kpj", 1.0), ("terkunci", 2.5),
    ),
    "faq.jkp": (("jkp", 4.0), ("phk", 3.0), ("phk+jht", -1.5)),
    "faq.office_contact": (
        ("kantor", 1.5), ("cabang", 2.0), ("alamat", 2.5), ("terdekat", 2.0),
        ("callcenter", 3.0), ("telepon", 2.0), ("nomor", 1.0), ("nomor+telepon", 1.5),
        ("nomor+cs", 2.0), ("nomor+bpjs", 1.0), ("email+bpjs", 2.5), ("whatsapp", 1.5),
        ("nomor+whatsapp", 1.5), ("jam+buka", 2.5), ("buka", 1.0), ("kantor+dimana", 1.5),
        ("hubungi+bpjs", 1.5), ("hubungi", 0.5), ("email+cs", 2.0), ("ngaku", -2.0),
        ("email+komplain", 1.5),
    ),
    "faq.security": (
        ("penipuan", 3.0), ("palsu", 3.5), ("aman", 2.5), ("resmi", 2.5), ("otp+minta", 3.0),
        ("ngaku", 3.0), ("minta+password", 3.0), ("minta+transfer", 3.0), ("transfer", 1.5),
        ("curiga", 2.5), ("bot+beneran", 2.5), ("bot+asli", 2.0), ("link+asli", 2.5),
        ("asli", 1.0), ("asli+tidak", 1.0), ("asli+bukan", 1.0),
        ("link+palsu", 1.0), ("hatihati", 1.5), ("otp", 1.0), ("kode+minta", 1.5),
    ),
    # Reached from the contribution alerts' buttons too (flows/alerts.py): how to report an
    # employer who deducted without paying ("lapor" is canonical "komplain"), and how a member
    # who pays their own contributions pays them. Whether a month was paid stays "history".
    "faq.report_employer": (
        ("komplain+perusahaan", 3.0), ("komplain+iuran", 2.0), ("komplain+tunggak", 2.5),
        ("tunggak", 2.0), ("perusahaan+tunggak", 1.0), ("potong+tidak+bayar", 2.5),
        ("potong+belum+bayar", 2.0), ("potong+tidak+masuk", 2.0),
        ("perusahaan+tidak+bayar", 1.5), ("dimana+komplain", 1.0), ("cara+komplain", 1.0),
        ("bagaimana+komplain", 1.0), ("petugas", -1.5), ("sudah+bayar", -1.0),
    ),
    "faq.pay_contribution": (
        ("cara bayar", 2.5), ("bagaimana+bayar", 1.5), ("bayar+dimana", 2.0),
        ("bayar+lewat", 1.5), ("bayar+jmo", 1.5), ("bayar+minimarket", 2.5),
        ("jatuh tempo", 2.5), ("batas+bayar", 2.5), ("bayar+sekaligus", 2.5),
        ("telat+bayar", 2.0), ("bayar+mandiri", 1.5), ("bayar+iuran+bpu", 1.0),
        ("sudah+bayar", -2.0), ("berapa", -1.0), ("saldo", -1.5),
    ),
    # BPJS Kesehatan is another agency (DOMAIN.md "Neighbours"): point there, never into a
    # flow of this bot ("cara daftar bpjs kesehatan" is no registration here).
    "faq.bpjs_kesehatan": (
        ("jkn", 4.0), ("jkn+daftar", 1.0), ("jkn+iuran", 1.0), ("jkn+bayar", 1.0),
        ("jkn+kartu", 1.0), ("jkn+saldo", 1.0), ("jkn+beda", -2.5),
    ),
}

EXAMPLES: dict[str, str] = {
    "check_balance": "saldo jht saya berapa", "history": "riwayat iuran saya",
    "register": "mau daftar", "handoff": "mau bicara dengan petugas", "help": "bantuan",
    "change_language": "ganti bahasa", "greeting": "selamat pagi", "thanks": "makasih",
    "cancel": "batal", "logout": "keluar dari akun", "delete_data": "hapus data saya",
    "my_data": "data apa yang disimpan",
    "unknown": "resep nasi goreng", "faq.claim_jht": "cara klaim jht",
    "faq.programs": "apa itu jkk", "faq.contribution_rates": "iuran jht berapa persen",
    "faq.balance_not_updated": "saldo tidak bertambah", "faq.jmo_app": "aplikasi jmo error",
    "faq.forgot_account": "lupa password jmo", "faq.jkp": "apa itu jkp",
    "faq.office_contact": "alamat kantor cabang", "faq.security": "ada yang minta otp",
    "faq.bpjs_kesehatan": "bpjs kesehatan",
    "faq.report_employer": "cara lapor perusahaan yang nunggak iuran",
    "faq.pay_contribution": "cara bayar iuran bpu",
}
"""One typical message per intent (and one for ``unknown``) that the rules must place there:
a new intent adds its rules above and its example here (tests/flows/test_intents.py)."""
