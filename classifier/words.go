package classifier

import "strings"

// commonWordList is a few hundred of the most frequent English words,
// function words first. It is used only to tell English from English
// written backwards or in ROT13; it is not a dictionary.
const commonWordList = `
the of and to a in is it you that he was for on are with as i his they be at one
have this from or had by not word but what some we can out other were all there
when up use your how said an each she which do their time if will way about many
then them write would like so these her long make thing see him two has look more
day could go come did number sound no most people my over know water than call
first who may down side been now find any new work part take get place made live
where after back little only round man year came show every good me give our under
name very through just form sentence great think say help low line differ turn cause
much mean before move right boy old too same tell does set three want air well also
play small end put home read hand port large spell add even land here must big high
such follow act why ask men change went light kind off need house picture try us
again animal point mother world near build self earth father head stand own page
should country found answer school grow study still learn plant cover food sun four
between state keep eye never last let thought city tree cross farm hard start might
story saw far sea draw left late run don't while press close night real life few
north open seem together next white children begin got walk example ease paper group
always music those both mark often letter until mile river car feet care second book
carry took science eat room friend began idea fish mountain stop once base hear horse
cut sure watch color face wood main enough plain girl usual young ready above ever
red list though feel talk bird soon body dog family direct pose leave song measure
door product black short numeral class wind question happen complete ship area half
rock order fire south problem piece told knew pass since top whole king space heard
best hour better true during hundred five remember step early hold west ground
interest reach fast verb sing listen six table travel less morning ten simple
several vowel toward war lay against pattern slow center love person money serve
appear road map rain rule govern pull cold notice voice unit power town fine certain
fly fall lead cry dark machine note wait plan figure star box noun field rest correct
able pound done beauty drive stood contain front teach week final gave green oh quick
develop ocean warm free minute strong special mind behind clear tail produce fact
street inch multiply nothing course stay wheel full force blue object decide surface
deep moon island foot system busy test record boat common gold possible plane stead
dry wonder laugh thousand ago ran check game shape equal hot miss brought heat snow
tire bring yes distant fill east paint language among am is are been being into onto
per via its it's i'm we're they're can't won't isn't aren't didn't doesn't that's
there's what's let's please thanks thank hello hi yeah okay ok sorry today tomorrow
yesterday sir our ours mine yours against within without upon across because
whether however though although again also very really just maybe perhaps about
above below under over after before during while where here there
send sent email meeting office team call phone line back level rate value
data file report review design program project model engine motor plate
meeting cycle block gain phase error steps step trim mirror beam depth weapon
deploy bay hull ring foam spacing pipe heat gap split fuel clearance thrust
noise signal range speed loop angle pressure weight length width height
lift visit public release approve stamp type backward backwards forward
seeker nozzle booster gyro missile radar sonar warhead guidance rocket
turbine blade antenna sensor laser jammer target launch control export
text flow flip dark
`

// commonWords is commonWordList as a set.
var commonWords = func() map[string]bool {
	m := make(map[string]bool, 700)
	for _, w := range strings.Fields(commonWordList) {
		m[w] = true
	}
	return m
}()

// knownWord reports a common word, allowing a plural or tense ending.
func knownWord(w string) bool {
	if commonWords[w] {
		return true
	}
	n := len(w)
	switch {
	case n > 3 && w[n-1] == 's' && commonWords[w[:n-1]]:
		return true
	case n > 4 && strings.HasSuffix(w, "es") && commonWords[w[:n-2]]:
		return true
	case n > 4 && strings.HasSuffix(w, "ed") && (commonWords[w[:n-2]] || commonWords[w[:n-1]]):
		return true
	case n > 5 && strings.HasSuffix(w, "ing") && (commonWords[w[:n-3]] || commonWords[w[:n-3]+"e"]):
		return true
	case n > 4 && strings.HasSuffix(w, "ly") && commonWords[w[:n-2]]:
		return true
	case n > 4 && strings.HasSuffix(w, "er") && (commonWords[w[:n-2]] || commonWords[w[:n-1]]):
		return true
	}
	return false
}

// englishSuffix reports a word ending the way English words often end;
// it weighs words the list does not know.
func englishSuffix(w string) bool {
	if len(w) < 5 {
		return false
	}
	for _, s := range [...]string{"ing", "tion", "sion", "ment", "ness", "able", "ible", "ous", "ive", "ity", "ally", "ically", "ers", "ings", "ions", "ents"} {
		if strings.HasSuffix(w, s) {
			return true
		}
	}
	return false
}
