-- doc/switchboard.txt is a real :help file: :helptags accepts it, and every |link| in it resolves.
return {
  skip_setup = true,
  run = function(T)
    local plugin = vim.api.nvim_get_runtime_file('doc/switchboard.txt', false)[1]
    T.ok(plugin, 'the help file is on the runtimepath')
    local copy = vim.fn.tempname()
    vim.fn.mkdir(copy .. '/doc', 'p')
    local lines = vim.fn.readfile(plugin)
    vim.fn.writefile(lines, copy .. '/doc/switchboard.txt')
    vim.v.errmsg = ''
    vim.cmd('helptags ' .. vim.fn.fnameescape(copy .. '/doc'))
    T.eq(vim.v.errmsg, '', 'helptags errors')
    local tags = table.concat(vim.fn.readfile(copy .. '/doc/tags'), '\n')
    for _, tag in ipairs({ 'switchboard', ':Switchboard', 'switchboard-setup', 'switchboard.statusline()' }) do
      T.contains(tags, tag .. '\tswitchboard.txt', 'tag ' .. tag)
    end
    vim.opt.runtimepath:prepend(copy)
    local links = {}
    for _, line in ipairs(lines) do
      for link in line:gmatch('|([^|%s]+)|') do
        links[link] = true
      end
    end
    T.ok(vim.tbl_count(links) > 10, 'the file has links')
    for link in pairs(links) do
      local ok, err = pcall(vim.cmd, 'help ' .. link)
      T.ok(ok, ('|%s| does not resolve: %s'):format(link, tostring(err)))
      vim.cmd('helpclose')
    end
  end,
}
